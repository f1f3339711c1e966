//! Interning of ACL lists: nodes with equal ACLs share one allocation, as
//! ZooKeeper's `ReferenceCountedACLCache` does. Most trees hold a handful of
//! distinct ACLs over millions of nodes.

use crate::proto::records::Acl;
use std::collections::HashMap;
use std::sync::Arc;

/// Distinct ACL lists in use by a tree.
#[derive(Debug, Default, Clone)]
pub struct AclCache {
    lists: HashMap<Vec<Acl>, Arc<Vec<Acl>>>,
}

impl AclCache {
    /// Returns the shared copy of `acl`, adding it if new.
    pub fn intern(&mut self, acl: &[Acl]) -> Arc<Vec<Acl>> {
        if let Some(shared) = self.lists.get(acl) {
            return shared.clone();
        }
        let shared = Arc::new(acl.to_vec());
        self.lists.insert(acl.to_vec(), shared.clone());
        shared
    }

    /// Called when a node drops its reference: forgets lists no node uses.
    pub fn release(&mut self, acl: Arc<Vec<Acl>>) {
        // One reference is the cache's, one is `acl` itself.
        if Arc::strong_count(&acl) == 2 {
            self.lists.remove(acl.as_slice());
        }
    }

    /// Number of distinct lists.
    pub fn len(&self) -> usize {
        self.lists.len()
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
        cache.release(a);
        assert_eq!(cache.len(), 1);
        cache.release(b);
        assert_eq!(cache.len(), 0);
    }
}
