//! Named limits of the runtime, and the per-IP connection counter.
//!
//! Every queue is bounded: an overloaded server slows its clients down (they
//! stop being read) instead of growing without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Connections the kernel queues on each listening socket until a shard
/// accepts them. Thousands of clients reconnect at once after a failover; a
/// full queue drops their SYNs and each retries a second later. The kernel
/// caps it at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: i32 = 4096;
/// Requests one connection may have unanswered before its reader pauses.
pub const OUTSTANDING_PER_CONN_MAX: usize = 1000;
/// Output bytes queued for one connection before it is closed as a slow reader.
pub const OUTPUT_PER_CONN_MAX_BYTES: usize = 64 << 20;
/// Bytes read from a socket per read call.
pub const READ_CHUNK_BYTES: usize = 16 << 10;
/// Messages queued on one shard → broadcast channel.
pub const SHARD_TO_BROADCAST_MESSAGES: usize = 4096;
/// Batches queued on one broadcast → shard channel.
pub const BROADCAST_TO_SHARD_BATCHES: usize = 1024;
/// Requests the broadcast core takes into one prepared batch before it logs and syncs.
pub const BATCH_REQUESTS_MAX: usize = 4096;
/// Items the broadcast core's mailbox holds before shard receivers wait.
pub const BROADCAST_MAILBOX_ITEMS: usize = 16384;

const _: () = assert!(BATCH_REQUESTS_MAX <= BROADCAST_MAILBOX_ITEMS, "a batch is taken from the mailbox");

/// Open client connections per IP address, shared by all shards. Touched
/// only on accept and close, never on the request path.
pub struct ConnLimits {
    max_per_ip: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnLimits {
    /// At most `max_per_ip` connections per address; 0 means unlimited.
    pub fn new(max_per_ip: u32) -> ConnLimits {
        ConnLimits { max_per_ip, open: Mutex::new(HashMap::new()) }
    }

    /// Counts a new connection; false if the address is at its limit.
    pub fn acquire(&self, ip: IpAddr) -> bool {
        let mut open = self.open.lock().expect("limits lock is never poisoned");
        let n = open.entry(ip).or_default();
        if self.max_per_ip != 0 && *n >= self.max_per_ip {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a closed connection.
    pub fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().expect("limits lock is never poisoned");
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit() {
        let limits = ConnLimits::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(limits.acquire(ip));
        assert!(limits.acquire(ip));
        assert!(!limits.acquire(ip));
        limits.release(ip);
        assert!(limits.acquire(ip));
        assert!(ConnLimits::new(0).acquire(ip));
    }
}
