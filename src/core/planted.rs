//! Bugs planted on purpose, in test builds only, so the simulator can show
//! that it catches each of them (`sim::tests`). Release builds do not
//! contain this module or any of its call sites.

use std::cell::Cell;

/// A bug the simulator must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The driver reports a persist done before the sync completed.
    AckBeforeSync,
    /// Entries are applied (and answered) as soon as they are appended.
    ApplyUncommitted,
    /// A new leader re-arms sessions as if last touched long ago.
    EarlyExpiryAfterLeaderChange,
    /// A sync is answered at once, without a ReadIndex.
    SyncBeforeCatchingUp,
    /// A shard answers a write before it delivers the watch events the write fired.
    ReplyBeforeWatchEvent,
}

thread_local! {
    static PLANTED: Cell<Option<Bug>> = const { Cell::new(None) };
}

/// Whether `bug` is planted on this thread.
pub fn planted(bug: Bug) -> bool {
    PLANTED.with(|p| p.get() == Some(bug))
}

/// Plants `bug` on this thread (None: none).
pub fn plant(bug: Option<Bug>) {
    PLANTED.with(|p| p.set(bug));
}
