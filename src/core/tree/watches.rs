//! Watches: which connection wants to hear about which path, and the events a
//! tree change fires. A pure data structure: triggering returns the
//! notifications to send, it sends nothing.
//!
//! The shape mirrors ZooKeeper's two `WatchManager`s, because the delivery
//! rules fall out of it:
//! - the *data* manager holds getData and exists watches (standard, one-shot),
//!   persistent watches and persistent-recursive watches;
//! - the *child* manager holds getChildren watches, persistent watches and
//!   (as in 3.8) persistent-recursive watches too.
//!
//! NodeCreated and NodeDataChanged fire the data manager at the path;
//! NodeDeleted fires the data manager, then the child manager for connections
//! not already told; NodeChildrenChanged fires the child manager at the parent.
//! A recursive watch fires at its path and below for every event except
//! NodeChildrenChanged, which recursive watchers never hear. Each connection
//! hears an event at most once.

use super::TreeEvent;
use crate::proto::codes::EventType;
use std::collections::{HashMap, HashSet};

/// A shard-local connection identifier.
pub type ConnId = u64;

/// Watch modes held by one connection on one path, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modes(u8);

impl Modes {
    /// One-shot (getData, exists, getChildren).
    pub const STANDARD: Modes = Modes(1);
    /// addWatch PERSISTENT.
    pub const PERSISTENT: Modes = Modes(2);
    /// addWatch PERSISTENT_RECURSIVE.
    pub const RECURSIVE: Modes = Modes(4);

    fn has(self, m: Modes) -> bool {
        self.0 & m.0 != 0
    }
    fn with(self, m: Modes) -> Modes {
        Modes(self.0 | m.0)
    }
    fn without(self, m: Modes) -> Modes {
        Modes(self.0 & !m.0)
    }
    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One of ZooKeeper's two watch tables.
#[derive(Debug, Default, Clone)]
struct WatchTable {
    by_path: HashMap<String, HashMap<ConnId, Modes>>,
    by_conn: HashMap<ConnId, HashSet<String>>,
    recursive_count: usize,
}

impl WatchTable {
    fn add(&mut self, path: &str, conn: ConnId, mode: Modes) {
        let modes = self.by_path.entry(path.to_string()).or_default().entry(conn).or_default();
        if mode == Modes::RECURSIVE && !modes.has(Modes::RECURSIVE) {
            self.recursive_count += 1;
        }
        *modes = modes.with(mode);
        self.by_conn.entry(conn).or_default().insert(path.to_string());
    }

    /// Removes `mode` (or every mode, when `None`) of `conn` on `path`; true if any was held.
    fn remove(&mut self, path: &str, conn: ConnId, mode: Option<Modes>) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(&modes) = watchers.get(&conn) else {
            return false;
        };
        let left = match mode {
            Some(m) if !modes.has(m) => return false,
            Some(m) => modes.without(m),
            None => Modes::default(),
        };
        if modes.has(Modes::RECURSIVE) && !left.has(Modes::RECURSIVE) {
            self.recursive_count -= 1;
        }
        if left.is_empty() {
            watchers.remove(&conn);
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        } else {
            watchers.insert(conn, left);
        }
        true
    }

    fn contains(&self, path: &str, conn: ConnId) -> bool {
        self.by_path.get(path).is_some_and(|w| w.contains_key(&conn))
    }

    /// Fires watches for an event at `path`; returns the connections to
    /// notify. `recursive_hears` is false for NodeChildrenChanged.
    fn trigger(&mut self, path: &str, recursive_hears: bool, out: &mut Vec<ConnId>) {
        let start = out.len();
        if let Some(watchers) = self.by_path.get(path) {
            out.extend(watchers.iter().filter(|(_, m)| recursive_hears || m.without(Modes::RECURSIVE) != Modes::default()).map(|(c, _)| *c));
            let one_shot: Vec<ConnId> = watchers.iter().filter(|(_, m)| m.has(Modes::STANDARD)).map(|(c, _)| *c).collect();
            for conn in one_shot {
                self.remove(path, conn, Some(Modes::STANDARD));
            }
        }
        if self.recursive_count > 0 && recursive_hears {
            let mut ancestor = path;
            while let Some((parent, _)) = crate::core::path::split(ancestor) {
                if let Some(watchers) = self.by_path.get(parent) {
                    out.extend(watchers.iter().filter(|(_, m)| m.has(Modes::RECURSIVE)).map(|(c, _)| *c));
                }
                ancestor = parent;
            }
        }
        dedup_tail(out, start);
    }

    fn remove_conn(&mut self, conn: ConnId) {
        for path in self.by_conn.get(&conn).cloned().unwrap_or_default() {
            self.remove(&path, conn, None);
        }
        debug_assert!(!self.by_conn.contains_key(&conn));
    }

    fn count(&self) -> usize {
        self.by_path.values().map(HashMap::len).sum()
    }
}

fn dedup_tail(out: &mut Vec<ConnId>, start: usize) {
    let mut seen = HashSet::new();
    let mut i = start;
    while i < out.len() {
        if seen.insert(out[i]) {
            i += 1;
        } else {
            out.swap_remove(i);
        }
    }
}

/// A notification to deliver: event type and path, to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub conn: ConnId,
    pub kind: EventType,
    pub path: String,
}

/// Which watches `removeWatches`/`checkWatches` address (`WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    Children,
    Data,
    Any,
}

/// The watches of every connection on one shard.
#[derive(Debug, Default, Clone)]
pub struct WatchRegistry {
    data: WatchTable,
    child: WatchTable,
}

impl WatchRegistry {
    /// getData or exists with watch=true.
    pub fn add_data(&mut self, path: &str, conn: ConnId) {
        self.data.add(path, conn, Modes::STANDARD);
    }

    /// getChildren with watch=true.
    pub fn add_child(&mut self, path: &str, conn: ConnId) {
        self.child.add(path, conn, Modes::STANDARD);
    }

    /// addWatch PERSISTENT.
    pub fn add_persistent(&mut self, path: &str, conn: ConnId) {
        self.data.add(path, conn, Modes::PERSISTENT);
        self.child.add(path, conn, Modes::PERSISTENT);
    }

    /// addWatch PERSISTENT_RECURSIVE.
    pub fn add_recursive(&mut self, path: &str, conn: ConnId) {
        self.data.add(path, conn, Modes::RECURSIVE);
        self.child.add(path, conn, Modes::RECURSIVE);
    }

    /// removeWatches: true if the connection had a matching watch (else NoWatcher).
    /// As in ZooKeeper 3.8, Children and Data remove every mode the
    /// connection holds on the path in that table (persistent ones included);
    /// Any removes from both tables.
    pub fn remove(&mut self, path: &str, conn: ConnId, kind: WatchKind) -> bool {
        match kind {
            WatchKind::Children => self.child.remove(path, conn, None),
            WatchKind::Data => self.data.remove(path, conn, None),
            WatchKind::Any => {
                let child = self.child.remove(path, conn, None);
                let data = self.data.remove(path, conn, None);
                child || data
            }
        }
    }

    /// checkWatches: whether the connection holds a watch of any mode on
    /// the path in the table(s) `kind` names.
    pub fn contains(&self, path: &str, conn: ConnId, kind: WatchKind) -> bool {
        match kind {
            WatchKind::Children => self.child.contains(path, conn),
            WatchKind::Data => self.data.contains(path, conn),
            WatchKind::Any => self.child.contains(path, conn) || self.data.contains(path, conn),
        }
    }

    /// Drops every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    /// The notifications a tree change causes, appended to `out`.
    pub fn trigger(&mut self, event: &TreeEvent, out: &mut Vec<Notification>) {
        let mut conns = Vec::new();
        match event.kind {
            EventType::NodeCreated | EventType::NodeDataChanged => self.data.trigger(event.path(), true, &mut conns),
            EventType::NodeDeleted => {
                self.data.trigger(event.path(), true, &mut conns);
                self.child.trigger(event.path(), true, &mut conns);
                dedup_tail(&mut conns, 0);
            }
            EventType::NodeChildrenChanged => self.child.trigger(event.path(), false, &mut conns),
            _ => {}
        }
        out.extend(conns.into_iter().map(|conn| Notification { conn, kind: event.kind, path: event.path().to_string() }));
    }

    /// Total watches, data and child tables together (mntr's zk_watch_count).
    pub fn watch_count(&self) -> usize {
        self.data.count() + self.child.count()
    }

    /// Paths with data or exists watches (wchs, wchp).
    pub fn data_paths(&self) -> impl Iterator<Item = (&String, Vec<ConnId>)> {
        self.data.by_path.iter().map(|(p, w)| (p, w.keys().copied().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str, kind: EventType) -> TreeEvent {
        let node = crate::core::tree::Node::new(path, None, std::sync::Arc::new(crate::core::tree::open_acl()), crate::core::txn::NodeKind::Persistent, 1, 1);
        TreeEvent::new(kind, &node)
    }

    fn fire(reg: &mut WatchRegistry, path: &str, kind: EventType) -> Vec<ConnId> {
        let mut out = Vec::new();
        reg.trigger(&ev(path, kind), &mut out);
        let mut conns: Vec<_> = out.into_iter().map(|n| n.conn).collect();
        conns.sort();
        conns
    }

    #[test]
    fn one_shot_watches_fire_once_and_delete_notifies_each_conn_once() {
        let mut reg = WatchRegistry::default();
        reg.add_data("/a", 1);
        reg.add_child("/a", 1);
        reg.add_child("/a", 2);
        assert_eq!(fire(&mut reg, "/a", EventType::NodeDeleted), vec![1, 2]);
        assert_eq!(fire(&mut reg, "/a", EventType::NodeDeleted), Vec::<ConnId>::new());
        assert_eq!(reg.watch_count(), 0);
    }

    #[test]
    fn persistent_watches_stay_and_recursive_skip_child_events() {
        let mut reg = WatchRegistry::default();
        reg.add_persistent("/a", 1);
        reg.add_recursive("/a", 2);
        assert_eq!(fire(&mut reg, "/a", EventType::NodeDataChanged), vec![1, 2]);
        assert_eq!(fire(&mut reg, "/a", EventType::NodeChildrenChanged), vec![1]);
        assert_eq!(fire(&mut reg, "/a/b/c", EventType::NodeCreated), vec![2]);
        assert_eq!(fire(&mut reg, "/a/b", EventType::NodeChildrenChanged), Vec::<ConnId>::new());
        assert!(reg.remove("/a", 2, WatchKind::Any));
        assert!(!reg.remove("/a", 2, WatchKind::Any));
        assert_eq!(fire(&mut reg, "/a/b/c", EventType::NodeCreated), Vec::<ConnId>::new());
        reg.remove_conn(1);
        assert_eq!(reg.watch_count(), 0);
    }

    #[test]
    fn remove_by_table_takes_every_mode_as_in_3_8() {
        let mut reg = WatchRegistry::default();
        reg.add_persistent("/a", 1);
        reg.add_recursive("/b", 1);
        assert!(reg.contains("/a", 1, WatchKind::Children) && reg.contains("/b", 1, WatchKind::Data));
        assert!(reg.contains("/b", 1, WatchKind::Children), "3.8 keeps recursive watches in both tables");
        assert!(reg.remove("/a", 1, WatchKind::Data));
        assert_eq!(fire(&mut reg, "/a", EventType::NodeDataChanged), Vec::<ConnId>::new());
        assert_eq!(fire(&mut reg, "/a", EventType::NodeChildrenChanged), vec![1], "the child table keeps its persistent watch");
        assert!(reg.remove("/b", 1, WatchKind::Data));
        assert!(reg.remove("/b", 1, WatchKind::Any), "the child table's copy remains");
        assert!(!reg.remove("/b", 1, WatchKind::Any));
    }
}
