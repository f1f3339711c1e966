//! Single-threaded wake-ups between tasks of one executor: [`Notify`] (a flag
//! with waiters) and [`Mailbox`] (a bounded queue a loop drains in batches).
//! Nothing here is `Send`: these never cross cores.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// An auto-reset event: `notify` wakes the waiters; `wait` returns once
/// notified since the last `wait` returned.
#[derive(Default)]
pub struct Notify {
    set: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Sets the flag and wakes every waiter.
    pub fn notify(&self) {
        self.set.set(true);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Waits until notified, then clears the flag.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// A queue with one consumer that takes everything queued at once (so it can
/// batch) and producers that wait while it is full.
pub struct Mailbox<T> {
    items: RefCell<VecDeque<T>>,
    capacity: usize,
    has_items: Notify,
    has_space: Notify,
}

impl<T> Mailbox<T> {
    /// An empty mailbox holding at most `capacity` items for `push`.
    pub fn new(capacity: usize) -> Mailbox<T> {
        assert!(capacity > 0, "a mailbox needs room for one item");
        Mailbox { items: RefCell::new(VecDeque::new()), capacity, has_items: Notify::default(), has_space: Notify::default() }
    }

    /// Queues an item, waiting while the mailbox is full.
    pub async fn push(&self, item: T) {
        while self.items.borrow().len() >= self.capacity {
            self.has_space.wait().await;
        }
        self.push_now(item);
    }

    /// Queues an item even when full (for the consumer's own timers and
    /// completions, which must never wait on themselves).
    pub fn push_now(&self, item: T) {
        self.items.borrow_mut().push_back(item);
        self.has_items.notify();
    }

    /// Waits for at least one item and returns up to `max` of the queued
    /// items, oldest first (the rest wait for the next call, which returns
    /// at once).
    pub async fn drain_up_to(&self, max: usize) -> VecDeque<T> {
        assert!(max > 0, "a drain takes at least one item");
        loop {
            let taken = {
                let mut items = self.items.borrow_mut();
                if items.len() <= max { std::mem::take(&mut *items) } else { items.drain(..max).collect() }
            };
            if !taken.is_empty() {
                debug_assert!(taken.len() <= max);
                self.has_space.notify();
                return taken;
            }
            self.has_items.wait().await;
        }
    }
}
