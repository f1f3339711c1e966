//! The client-history checker: what each simulated client saw, held against
//! the order in which the ensemble committed writes.
//!
//! Clients write shared keys (`/k0`..) and read them from whichever server
//! they are connected to. A history is good when:
//! - writes are linearizable: a write's zxid is above that of every write
//!   acknowledged (to any client) before it was sent, so the commit order
//!   respects real time;
//! - reads are sequentially consistent per client: a read reflects a state
//!   (the serving server's zxid) no older than anything the client saw
//!   before, its own writes and earlier reads, across reconnections too;
//!   and the value read is the last one committed for the key at that state;
//! - `sync` then read is linearizable: the read after a sync reflects every
//!   write acknowledged before the sync was sent;
//! - a watch event comes before any reply that reflects the change that
//!   fires it: once a client has set a watch on a key at some state, no
//!   reply to it may carry a zxid at or past the key's next change until
//!   the event has come; and no event comes without a change.
//!
//! Clients pipeline, so what they wait for is kept by request (xid).
//!
//! Because every write goes through one total order (zxids) and every read
//! names the state it reflects, these checks are exact and need no search
//! over orderings (Wing and Gong's general problem). A violation names the
//! rule and prints the client's recent history and the key's writes.

use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// The keys clients share.
pub const KEYS: usize = 4;

/// Events kept per client for a violation's report.
const KEPT_EVENTS: usize = 12;

/// The name of shared key `i`.
pub fn key(i: usize) -> String {
    format!("/k{i}")
}

/// Whether `path` is a shared key.
pub fn is_key(path: &str) -> bool {
    path.strip_prefix("/k").is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n < KEYS))
}

/// What a client did, kept for a violation's report (formatted only then).
#[derive(Debug)]
enum Event {
    WriteSent { what: String, floor: i64 },
    WriteAcked { zxid: i64 },
    SyncSent { floor: i64 },
    Read { server: u64, key: String, value: Option<Bytes>, state: i64 },
    WatchSet { key: String, state: i64 },
    WatchFired { key: String },
    Reply { zxid: i64 },
    Disconnected,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::WriteSent { what, floor } => write!(f, "sends {what} (acknowledged writes are at {floor:#x})"),
            Event::WriteAcked { zxid } => write!(f, "write acknowledged at {zxid:#x}"),
            Event::SyncSent { floor } => write!(f, "sends sync (acknowledged writes are at {floor:#x})"),
            Event::Read { server, key, value, state } => write!(f, "reads {key} = {} from server {server} at {state:#x}", shown(value.as_deref())),
            Event::WatchSet { key, state } => write!(f, "watches {key} from {state:#x}"),
            Event::WatchFired { key } => write!(f, "gets the watch event of {key}"),
            Event::Reply { zxid } => write!(f, "gets a reply at {zxid:#x}"),
            Event::Disconnected => write!(f, "loses its connection"),
        }
    }
}

fn shown(value: Option<&[u8]>) -> String {
    value.map_or("no node".to_string(), |v| format!("{:?}", String::from_utf8_lossy(v)))
}

/// A read as a client saw it: the key's value on `server`, whose tree was
/// at zxid `state`.
pub struct Observed<'a> {
    pub server: u64,
    pub key: &'a str,
    pub value: Option<&'a [u8]>,
    pub state: i64,
}

#[derive(Debug, Default)]
struct ClientView {
    /// The newest zxid this client has seen (acknowledged or read).
    seen: i64,
    /// Writes in flight, by xid: acknowledged writes reached this zxid when each was sent.
    write_floors: BTreeMap<i32, i64>,
    /// Reads sent behind a sync, by xid: acknowledged writes reached this
    /// zxid when the sync was sent.
    sync_floors: BTreeMap<i32, i64>,
    /// Watches set and not yet fired, by key: the state the read that set it reflected.
    watches: BTreeMap<String, i64>,
    events: VecDeque<(i64, Event)>,
}

/// Everything clients did, as far as the rules need it.
#[derive(Debug, Default)]
pub struct History {
    /// Each shared key's committed values by zxid (None: not created).
    committed: BTreeMap<String, BTreeMap<i64, Bytes>>,
    /// The newest zxid of any acknowledged write.
    max_acked: i64,
    clients: BTreeMap<u64, ClientView>,
    /// Client operations completed: writes acknowledged, reads, syncs.
    pub operations: u64,
    /// Watch events delivered.
    pub watch_events: u64,
}

impl History {
    fn client(&mut self, id: u64) -> &mut ClientView {
        self.clients.entry(id).or_default()
    }

    fn event(&mut self, id: u64, now: i64, event: Event) {
        let events = &mut self.client(id).events;
        if events.len() == KEPT_EVENTS {
            events.pop_front();
        }
        events.push_back((now, event));
    }

    /// The newest zxid client `id` has seen (what it presents when it connects).
    pub fn seen(&self, id: u64) -> i64 {
        self.clients.get(&id).map_or(0, |c| c.seen)
    }

    /// Whether a shared key has been created (as far as commits show).
    pub fn exists(&self, key: &str) -> bool {
        self.committed.get(key).is_some_and(|w| !w.is_empty())
    }

    /// A write of a shared key committed (every server releases it; the
    /// first one counts).
    pub fn committed(&mut self, zxid: i64, path: &str, data: &Option<Bytes>) {
        if is_key(path) {
            self.committed.entry(path.to_string()).or_default().entry(zxid).or_insert_with(|| data.clone().unwrap_or_default());
        }
    }

    /// Client `id` sent a write as `xid`.
    pub fn write_sent(&mut self, id: u64, xid: i32, now: i64, what: &str) {
        let floor = self.max_acked;
        self.client(id).write_floors.insert(xid, floor);
        self.event(id, now, Event::WriteSent { what: what.to_string(), floor });
    }

    /// Client `id`'s write `xid` was acknowledged at `zxid` (applied or
    /// failed: a failed write takes a zxid too).
    pub fn write_acked(&mut self, id: u64, xid: i32, now: i64, zxid: i64) -> Result<(), String> {
        self.event(id, now, Event::WriteAcked { zxid });
        self.operations += 1;
        let c = self.client(id);
        let floor = c.write_floors.remove(&xid).expect("an acknowledged write was sent");
        c.seen = c.seen.max(zxid);
        self.max_acked = self.max_acked.max(zxid);
        if zxid <= floor {
            return Err(self.violation(id, None, format!("a write committed at {zxid:#x}, not after {floor:#x}, a write acknowledged before it was sent")));
        }
        Ok(())
    }

    /// Client `id` sent a sync, and read `read_xid` behind it.
    pub fn sync_sent(&mut self, id: u64, read_xid: i32, now: i64) {
        let floor = self.max_acked;
        self.client(id).sync_floors.insert(read_xid, floor);
        self.event(id, now, Event::SyncSent { floor });
    }

    /// Client `id`'s read `xid` was answered (a read behind a sync answers
    /// to the sync's floor).
    pub fn read(&mut self, id: u64, xid: i32, now: i64, read: Observed<'_>) -> Result<(), String> {
        let Observed { server, key, value, state } = read;
        self.event(id, now, Event::Read { server, key: key.to_string(), value: value.map(Bytes::copy_from_slice), state });
        self.operations += 1;
        let c = self.client(id);
        let seen = c.seen;
        let sync_floor = c.sync_floors.remove(&xid);
        c.seen = c.seen.max(state);
        if state < seen {
            return Err(self.violation(id, Some(key), format!("a read reflects {state:#x}, older than {seen:#x}, which this client had already seen")));
        }
        if let Some(floor) = sync_floor.filter(|floor| state < *floor) {
            return Err(self.violation(
                id,
                Some(key),
                format!("a read after a sync reflects {state:#x}, older than {floor:#x}, acknowledged before the sync was sent"),
            ));
        }
        let expected = self.committed.get(key).and_then(|w| w.range(..=state).next_back()).map(|(_, v)| v.clone());
        if expected.as_deref() != value {
            let expected = shown(expected.as_deref());
            return Err(self.violation(
                id,
                Some(key),
                format!("a read at {state:#x} saw {}, but the last value committed by then is {expected}", shown(value)),
            ));
        }
        Ok(())
    }

    /// Client `id` set a watch on `key` with a read that reflected `state`
    /// (a watch already set on it stays, and fires first).
    pub fn watch_set(&mut self, id: u64, now: i64, key: &str, state: i64) {
        self.event(id, now, Event::WatchSet { key: key.to_string(), state });
        self.client(id).watches.entry(key.to_string()).or_insert(state);
    }

    /// The first change of `key` committed after `state`, if any yet.
    fn next_change(&self, key: &str, state: i64) -> Option<i64> {
        self.committed.get(key).and_then(|w| w.range(state + 1..).next()).map(|(z, _)| *z)
    }

    /// A watch event for `path` reached client `id`.
    pub fn watch_fired(&mut self, id: u64, now: i64, path: &str) -> Result<(), String> {
        self.event(id, now, Event::WatchFired { key: path.to_string() });
        self.watch_events += 1;
        let Some(state) = self.client(id).watches.remove(path) else {
            return Err(self.violation(id, Some(path), format!("a watch event for {path}, which it does not watch")));
        };
        if self.next_change(path, state).is_none() {
            return Err(self.violation(id, Some(path), format!("a watch event for {path}, unchanged since {state:#x}, when the watch was set")));
        }
        Ok(())
    }

    /// A reply carrying `zxid` reached client `id`: every change it
    /// reflects to a watched key must have fired its watch already.
    pub fn reply_seen(&mut self, id: u64, now: i64, zxid: i64) -> Result<(), String> {
        let watches = self.clients.get(&id).map(|c| &c.watches);
        let missed = watches.into_iter().flatten().find_map(|(key, &state)| self.next_change(key, state).filter(|z| *z <= zxid).map(|z| (key.clone(), z)));
        if let Some((key, change)) = missed {
            self.event(id, now, Event::Reply { zxid });
            return Err(self.violation(id, Some(&key), format!("a reply at {zxid:#x} reflects the change of {key} at {change:#x}, before the watch event")));
        }
        Ok(())
    }

    /// Client `id` lost its connection: its requests in flight have no
    /// answer to come, and its watches are gone (it sets no watch again).
    pub fn disconnected(&mut self, id: u64, now: i64) {
        let c = self.client(id);
        c.write_floors.clear();
        c.sync_floors.clear();
        c.watches.clear();
        self.event(id, now, Event::Disconnected);
    }

    /// The report of a broken rule: the client's recent events, and the
    /// key's committed writes.
    fn violation(&self, id: u64, key: Option<&str>, rule: String) -> String {
        let mut out = format!("client {id}: {rule}\n  its history (newest last):\n");
        for (at, e) in self.clients.get(&id).map(|c| c.events.iter()).into_iter().flatten() {
            out += &format!("    {at} ms: {e}\n");
        }
        if let Some(writes) = key.and_then(|k| self.committed.get(k)) {
            out += &format!("  {} committed as:\n", key.unwrap_or_default());
            for (zxid, v) in writes.iter().rev().take(KEPT_EVENTS).rev() {
                out += &format!("    {zxid:#x}: {:?}\n", String::from_utf8_lossy(v));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_with(writes: &[(i64, &str)]) -> History {
        let mut h = History::default();
        for (zxid, v) in writes {
            h.committed(*zxid, "/k0", &Some(Bytes::copy_from_slice(v.as_bytes())));
        }
        h
    }

    #[test]
    fn each_rule_catches_what_it_forbids() {
        let read =
            |h: &mut History, client, xid, server, value: Option<&'static [u8]>, state| h.read(client, xid, 0, Observed { server, key: "/k0", value, state });
        // A stale read after a newer one.
        let mut h = history_with(&[(5, "a"), (9, "b")]);
        read(&mut h, 1, 1, 1, Some(b"b"), 9).unwrap();
        assert!(read(&mut h, 1, 2, 2, Some(b"a"), 5).unwrap_err().contains("older than 0x9"));
        // A value other than the one committed at the state read.
        let mut h = history_with(&[(5, "a"), (9, "b")]);
        assert!(read(&mut h, 1, 1, 1, Some(b"a"), 9).unwrap_err().contains("last value committed"));
        // A write ordered before one acknowledged before it was sent.
        let mut h = History::default();
        h.write_sent(1, 1, 0, "w1");
        h.write_acked(1, 1, 1, 7).unwrap();
        h.write_sent(2, 1, 2, "w2");
        assert!(h.write_acked(2, 1, 3, 6).unwrap_err().contains("not after 0x7"));
        // A read behind a sync that misses a write acknowledged before the sync.
        let mut h = history_with(&[(5, "a"), (9, "b")]);
        h.write_sent(1, 1, 0, "w");
        h.write_acked(1, 1, 1, 9).unwrap();
        h.sync_sent(2, 2, 2);
        assert!(read(&mut h, 2, 2, 3, Some(b"a"), 5).unwrap_err().contains("after a sync"));
        // A reply that reflects a watched change before its event.
        let mut h = history_with(&[(5, "a"), (9, "b")]);
        read(&mut h, 1, 1, 1, Some(b"a"), 6).unwrap();
        h.watch_set(1, 0, "/k0", 6);
        h.reply_seen(1, 1, 8).unwrap();
        assert!(h.reply_seen(1, 2, 9).unwrap_err().contains("before the watch event"));
        // An event with no change, and one for a key not watched.
        let mut h = history_with(&[(5, "a")]);
        h.watch_set(1, 0, "/k0", 5);
        assert!(h.watch_fired(1, 1, "/k0").unwrap_err().contains("unchanged since 0x5"));
        assert!(h.watch_fired(1, 2, "/k0").unwrap_err().contains("does not watch"));
        // And a good history passes: the event comes, then a reply past the change.
        let mut h = history_with(&[(5, "a"), (9, "b")]);
        read(&mut h, 1, 1, 1, None, 4).unwrap();
        read(&mut h, 1, 2, 1, Some(b"a"), 8).unwrap();
        h.watch_set(1, 0, "/k0", 8);
        h.watch_fired(1, 1, "/k0").unwrap();
        h.reply_seen(1, 2, 9).unwrap();
        read(&mut h, 1, 3, 2, Some(b"b"), 9).unwrap();
    }
}
