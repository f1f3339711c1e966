//! Interning of ACL lists: nodes with equal ACLs share one allocation, as
//! ZooKeeper's `ReferenceCountedACLCache` does. Most trees hold a handful of
//! distinct ACLs over millions of nodes.
//!
//! The cache holds weak references, so a list lives exactly as long as some
//! node (or an in-flight watch event) uses it. Entries whose list died are
//! pruned when the cache has doubled since the last prune: amortised O(1).

use crate::proto::records::Acl;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Distinct ACL lists in use by a tree.
#[derive(Debug, Default, Clone)]
pub struct AclCache {
    lists: HashMap<Vec<Acl>, Weak<Vec<Acl>>>,
    prune_at: usize,
}

impl AclCache {
    /// Returns the shared copy of `acl`, adding it if new.
    pub fn intern(&mut self, acl: &[Acl]) -> Arc<Vec<Acl>> {
        if let Some(shared) = self.lists.get(acl).and_then(Weak::upgrade) {
            return shared;
        }
        let shared = Arc::new(acl.to_vec());
        self.lists.insert(acl.to_vec(), Arc::downgrade(&shared));
        if self.lists.len() > self.prune_at {
            self.lists.retain(|_, w| w.strong_count() > 0);
            self.prune_at = (self.lists.len() * 2).max(64);
        }
        shared
    }

    /// Number of distinct lists in use.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lists.values().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::Id;

    #[test]
    fn equal_lists_share_and_unused_lists_are_forgotten() {
        let mut cache = AclCache::default();
        let acl = vec![Acl { perms: 31, id: Id::new("world", "anyone") }];
        let a = cache.intern(&acl);
        let b = cache.intern(&acl);
        assert!(Arc::ptr_eq(&a, &b));
        drop(a);
        assert_eq!(cache.len(), 1);
        drop(b);
        assert_eq!(cache.len(), 0);
        for i in 0..1000 {
            cache.intern(&[Acl { perms: i, id: Id::new("world", "anyone") }]);
        }
        assert!(cache.lists.len() <= 128, "dead entries are pruned: {}", cache.lists.len());
    }
}
