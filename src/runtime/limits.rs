//! Named limits of the runtime, and the per-IP connection counter.
//!
//! Every queue is bounded: an overloaded server slows its clients down (they
//! stop being read) instead of growing without bound.

use crate::config::Throttle;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// ZooKeeper 3.6's connection throttle as a token bucket, one per shard
/// (each takes 1/N of the tokens and of the refill): a new connection takes
/// a token or is closed at once. Off (admits everything) without
/// `connection_throttle_tokens`.
#[derive(Debug)]
pub struct ConnectionThrottle {
    tokens: f64,
    capacity: f64,
    refill_per_ms: f64,
    last: Instant,
    /// Connections refused since the last report, and when that was.
    refused: u64,
    reported: Instant,
}

/// How often refused connections are reported in the log.
const THROTTLE_REPORT_EVERY: Duration = Duration::from_secs(1);

impl ConnectionThrottle {
    /// One of `shards` shards' share of the throttle `t`.
    pub fn new(t: &Throttle, shards: usize, now: Instant) -> ConnectionThrottle {
        let shards = shards.max(1) as f64;
        let capacity = if t.connection_tokens == 0 { f64::INFINITY } else { (t.connection_tokens as f64 / shards).ceil() };
        let refill_per_ms = t.connection_fill_count as f64 / t.connection_fill_ms as f64 / shards;
        ConnectionThrottle { tokens: capacity, capacity, refill_per_ms, last: now, refused: 0, reported: now }
    }

    /// Whether a connection arriving `now` may stay.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.capacity.is_infinite() {
            return true;
        }
        let elapsed_ms = now.saturating_duration_since(self.last).as_secs_f64() * 1000.0;
        self.last = now;
        self.tokens = (self.tokens + elapsed_ms * self.refill_per_ms).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        self.refused += 1;
        false
    }

    /// The count of refusals to log, at most once a second.
    pub fn report(&mut self, now: Instant) -> Option<u64> {
        if self.refused == 0 || now.saturating_duration_since(self.reported) < THROTTLE_REPORT_EVERY {
            return None;
        }
        self.reported = now;
        Some(std::mem::take(&mut self.refused))
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

    #[test]
    fn connection_throttle_is_a_token_bucket() {
        let t0 = Instant::now();
        let t = Throttle { connection_tokens: 4, connection_fill_ms: 10, connection_fill_count: 2, ..Throttle::default() };
        let mut bucket = ConnectionThrottle::new(&t, 2, t0);
        assert!(bucket.admit(t0) && bucket.admit(t0), "a shard's share of the burst: 2");
        assert!(!bucket.admit(t0));
        assert!(bucket.admit(t0 + Duration::from_millis(10)), "1 token per 10 ms per shard");
        assert!(!bucket.admit(t0 + Duration::from_millis(10)));
        assert_eq!(bucket.report(t0 + Duration::from_secs(1)), Some(2));
        let mut off = ConnectionThrottle::new(&Throttle::default(), 1, t0);
        assert!((0..10_000).all(|_| off.admit(t0)));
    }
}
