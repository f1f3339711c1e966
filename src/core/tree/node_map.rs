//! The map from path to node that each core keeps. A node holds its own
//! path, so a slot is one pointer (8 bytes) rather than a path and a pointer
//! (24): with a map per core, that is most of what an extra core costs.

use super::Node;

/// Nodes by path, each slot one shared node.
#[derive(Debug, Clone, Default)]
pub struct NodeMap {
    table: hashbrown::HashTable<Node>,
    /// aHash: several times faster than SipHash on paths, and still seeded
    /// per map, so clients cannot aim collisions at it.
    hasher: ahash::RandomState,
}

impl NodeMap {
    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.table.find(self.hash(path), |n| n.path() == path)
    }

    /// The slot of the node at `path`, to replace it in place.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        let hash = self.hash(path);
        self.table.find_mut(hash, |n| n.path() == path)
    }

    /// Whether a node is at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Puts `node` at its path; returns the node it replaced.
    pub fn insert(&mut self, node: Node) -> Option<Node> {
        let hash = self.hash(node.path());
        let hasher = &self.hasher;
        match self.table.entry(hash, |n| n.path() == node.path(), |n| hasher.hash_one(n.path())) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => Some(std::mem::replace(slot.get_mut(), node)),
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(node);
                None
            }
        }
    }

    /// Takes the node at `path` out.
    pub fn remove(&mut self, path: &str) -> Option<Node> {
        let hash = self.hash(path);
        self.table.find_entry(hash, |n| n.path() == path).ok().map(|slot| slot.remove().0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Makes room for `more` nodes.
    pub fn reserve(&mut self, more: usize) {
        let hasher = &self.hasher;
        self.table.reserve(more, |n| hasher.hash_one(n.path()));
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.table.iter()
    }
}
