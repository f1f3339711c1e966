//! Session bookkeeping on the broadcast core: ids, passwords, negotiated
//! timeouts and tick-bucket expiry (ZooKeeper's `SessionTrackerImpl` and
//! `ExpiryQueue`). Time is an input: nothing here reads a clock.
//!
//! A session expires at `round_up(last_touch + timeout)` to the next tick
//! boundary; all sessions of one bucket expire together when the tick passes.
//! Expiry does not remove a session: it marks it closing and hands it out, and
//! the caller proposes a closeSession transaction, so ephemerals disappear
//! through the same ordered path as every write.

use std::collections::{BTreeMap, HashMap, HashSet};

/// ZooKeeper's `superSecret`, mixed into the seed of each session's password.
const PASSWORD_SECRET: i64 = 0xB341_5C00;

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;

/// The password of a session: `java.util.Random(id ^ superSecret).nextBytes(16)`,
/// so it can be recomputed anywhere and equals what ZooKeeper would issue.
pub fn password(session_id: i64) -> [u8; PASSWORD_LEN] {
    let mut seed = ((session_id ^ PASSWORD_SECRET) ^ 0x5_DEEC_E66D) & ((1 << 48) - 1);
    let mut next_int = || {
        seed = (seed.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        (seed >> 16) as i32
    };
    let mut out = [0u8; PASSWORD_LEN];
    for chunk in out.chunks_mut(4) {
        let mut rnd = next_int();
        for b in chunk {
            *b = rnd as u8;
            rnd >>= 8;
        }
    }
    out
}

/// The first session id of a server: its id in the high byte, the time below
/// (`SessionTrackerImpl.initializeNextSessionId`).
pub fn first_session_id(server_id: u8, now_ms: i64) -> i64 {
    let time_part = ((now_ms << 24) as u64 >> 8) as i64;
    let id = time_part | ((server_id as i64) << 56);
    if id == i64::MIN { id + 1 } else { id }
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    timeout_ms: i32,
    expires_at_ms: i64,
    closing: bool,
}

/// Live sessions, their timeouts and expiry buckets.
#[derive(Debug)]
pub struct SessionTracker {
    tick_ms: i64,
    sessions: HashMap<i64, Tracked>,
    buckets: BTreeMap<i64, HashSet<i64>>,
    next_id: i64,
}

impl SessionTracker {
    /// An empty tracker issuing ids from `first_id`, expiring on `tick_ms` boundaries.
    pub fn new(tick_ms: i64, first_id: i64) -> SessionTracker {
        assert!(tick_ms > 0, "tickTime must be positive");
        SessionTracker { tick_ms, sessions: HashMap::new(), buckets: BTreeMap::new(), next_id: first_id }
    }

    /// The next unused session id.
    pub fn next_session_id(&mut self) -> i64 {
        loop {
            let id = self.next_id;
            self.next_id += 1;
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    fn bucket_of(&self, at_ms: i64) -> i64 {
        (at_ms / self.tick_ms + 1) * self.tick_ms
    }

    /// Starts tracking a session (new, or restored from disk) as touched at `now_ms`.
    pub fn add(&mut self, id: i64, timeout_ms: i32, now_ms: i64) {
        self.sessions.insert(id, Tracked { timeout_ms, expires_at_ms: 0, closing: false });
        self.touch(id, now_ms);
    }

    /// Records activity; false if the session is unknown or already closing.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        let bucket = match self.sessions.get(&id) {
            Some(s) if !s.closing => self.bucket_of(now_ms + s.timeout_ms as i64),
            _ => return false,
        };
        let s = self.sessions.get_mut(&id).expect("checked above");
        if s.expires_at_ms == bucket {
            return true;
        }
        let old = std::mem::replace(&mut s.expires_at_ms, bucket);
        if let Some(set) = self.buckets.get_mut(&old) {
            set.remove(&id);
            if set.is_empty() {
                self.buckets.remove(&old);
            }
        }
        self.buckets.entry(bucket).or_default().insert(id);
        true
    }

    /// The negotiated timeout of a live session.
    pub fn timeout_of(&self, id: i64) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.timeout_ms)
    }

    /// Marks a session closing (a closeSession is on its way); it will not expire again.
    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    /// Forgets a session (its closeSession was applied).
    pub fn remove(&mut self, id: i64) {
        if let Some(s) = self.sessions.remove(&id)
            && let Some(set) = self.buckets.get_mut(&s.expires_at_ms)
        {
            set.remove(&id);
            if set.is_empty() {
                self.buckets.remove(&s.expires_at_ms);
            }
        }
    }

    /// Sessions whose bucket has passed at `now_ms`; each is marked closing.
    pub fn expire(&mut self, now_ms: i64) -> Vec<i64> {
        let mut expired = Vec::new();
        while let Some((&at, _)) = self.buckets.first_key_value() {
            if at > now_ms {
                break;
            }
            let set = self.buckets.remove(&at).expect("first key exists");
            for id in set {
                let s = self.sessions.get_mut(&id).expect("bucketed sessions are tracked");
                debug_assert_eq!(s.expires_at_ms, at);
                if !s.closing {
                    s.closing = true;
                    expired.push(id);
                }
            }
        }
        expired.sort_unstable();
        expired
    }

    /// Tracks exactly these sessions, each touched at `now_ms` (a new
    /// leader's fresh start); ids keep coming from where they were.
    pub fn rearm(&mut self, sessions: impl IntoIterator<Item = (i64, i32)>, now_ms: i64) {
        self.sessions.clear();
        self.buckets.clear();
        for (id, timeout_ms) in sessions {
            self.add(id, timeout_ms, now_ms);
        }
        debug_assert_eq!(self.buckets.values().map(|b| b.len()).sum::<usize>(), self.sessions.len(), "every session is in one bucket");
    }

    /// (id, timeout, expiry time) of every tracked session, by expiry (dump).
    pub fn expiries(&self) -> Vec<(i64, i32, i64)> {
        let mut out: Vec<(i64, i32, i64)> = self.sessions.iter().map(|(id, s)| (*id, s.timeout_ms, s.expires_at_ms)).collect();
        out.sort_by_key(|(id, _, at)| (*at, *id));
        out
    }

    /// Whether no session is tracked.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_java_random() {
        // java.util.Random(0).nextBytes(new byte[4]) = [96, -76, 32, -69].
        // Session id = superSecret gives seed 0.
        assert_eq!(&password(PASSWORD_SECRET)[..4], &[96u8, 180, 32, 187]);
    }

    #[test]
    fn sessions_expire_by_tick_bucket_unless_touched() {
        let mut t = SessionTracker::new(2000, first_session_id(1, 5));
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!(a >> 56, 1);
        t.add(a, 4000, 0);
        t.add(b, 4000, 0);
        assert!(t.expire(5999).is_empty());
        assert!(t.touch(b, 3000));
        assert_eq!(t.expire(6000), vec![a]);
        assert!(!t.touch(a, 6000), "a closing session cannot be revived");
        assert_eq!(t.expire(8000), vec![b]);
        t.remove(a);
        t.remove(b);
        assert!(t.is_empty());
    }
}
