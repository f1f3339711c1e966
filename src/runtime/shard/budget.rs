//! A shard's share of `globalOutstandingLimit`: writes (and syncs) sent to
//! the broadcast core and not yet answered. At the limit the shard stops
//! reading from its clients (their readers wait here) until answers bring
//! the count below it again, as ZooKeeper stops reading its sockets past
//! the limit. Each of N shards takes 1/N of the server's limit, so no count
//! is shared between cores.

use super::conn::ConnId;

/// Writes in flight on one shard, against its share of the limit.
#[derive(Debug)]
pub struct WriteBudget {
    in_flight: usize,
    limit: usize,
    /// Connections whose readers wait for the count to fall below the limit.
    waiters: Vec<ConnId>,
}

impl WriteBudget {
    /// One of `shards` shards' share of `server_limit`.
    pub fn new(server_limit: usize, shards: usize) -> WriteBudget {
        WriteBudget { in_flight: 0, limit: server_limit.div_ceil(shards.max(1)).max(1), waiters: Vec::new() }
    }

    /// Whether no more requests may be read now.
    pub fn spent(&self) -> bool {
        self.in_flight >= self.limit
    }

    /// Writes in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A write was sent to the broadcast core.
    pub fn take(&mut self) {
        self.in_flight += 1;
    }

    /// Connection `conn`'s reader waits for room.
    pub fn wait(&mut self, conn: ConnId) {
        if !self.waiters.contains(&conn) {
            self.waiters.push(conn);
        }
    }

    /// `n` writes were answered (or dropped with their connection); the
    /// readers to wake, once there is room again.
    pub fn give_back(&mut self, n: usize) -> Vec<ConnId> {
        debug_assert!(n <= self.in_flight, "only writes in flight are given back");
        self.in_flight -= n;
        if self.spent() { Vec::new() } else { std::mem::take(&mut self.waiters) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_wait_at_the_limit_and_wake_below_it() {
        let mut b = WriteBudget::new(4, 2);
        b.take();
        assert!(!b.spent());
        b.take();
        assert!(b.spent(), "2 of a share of 4 / 2 shards");
        b.wait(7);
        b.wait(7);
        b.wait(9);
        assert_eq!(b.give_back(1), vec![7, 9], "each waiter once, woken when there is room");
        assert!(b.give_back(1).is_empty());
        assert_eq!(WriteBudget::new(1000, 16).limit, 63);
    }
}
