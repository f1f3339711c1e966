//! The invariants the simulator checks after every step, from what every
//! server shows: at most one leader per term, one committed entry per
//! index everywhere, one tree digest per applied zxid everywhere.

use crate::core::sequencer::Sequencer;
use crate::storage::log::{Log, MemLog};
use std::collections::{BTreeMap, HashMap};

/// FNV-1a over bytes: a stable hash (no per-process seed).
pub fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01B3);
    }
    h
}

/// The starting value of [`fnv`].
pub const FNV_START: u64 = 0xCBF2_9CE4_8422_2325;

/// What has been seen so far, to hold later observations against.
#[derive(Debug, Default)]
pub struct Checker {
    /// The leader of each term that had one.
    leaders: HashMap<u64, u64>,
    /// Each committed index: the term and data hash of its entry.
    committed: BTreeMap<u64, (u64, u64)>,
    /// Each server's log is checked up to here.
    checked: HashMap<u64, u64>,
    /// Tree digests by the zxid they were taken at.
    digests: HashMap<i64, (u64, u64)>,
    /// The zxid each server last had its digest taken at.
    digested_at: HashMap<u64, i64>,
}

/// How many zxids a server moves between digests of its tree (a digest
/// walks the whole tree).
const DIGEST_EVERY: i64 = 25;

impl Checker {
    /// Checks server `id`: its leadership, the entries it has applied
    /// (committed) against every other server's, and (every
    /// [`DIGEST_EVERY`] zxids, or when `force`) its tree's digest.
    pub fn observe(&mut self, id: u64, seq: &Sequencer, log: &MemLog, base_index: u64, force: bool) -> Result<(), String> {
        let (leader, is_me) = seq.leader();
        if is_me {
            let term = seq.term();
            if let Some(other) = self.leaders.insert(term, id)
                && other != id
            {
                return Err(format!("two leaders in term {term}: servers {other} and {id}"));
            }
        }
        debug_assert!(!is_me || leader == id, "a server that leads names itself");
        let applied = seq.applied_index();
        let from = self.checked.get(&id).copied().unwrap_or(0).max(base_index);
        if applied > from {
            let entries = log.read(from, applied).map_err(|e| format!("server {id}'s log: {e}"))?;
            for e in entries {
                let h = fnv(&e.data, FNV_START);
                match self.committed.get(&e.index) {
                    Some(&(term, hash)) if (term, hash) != (e.term, h) => {
                        return Err(format!("server {id} committed index {} as term {} ({h:x}); another server as term {term} ({hash:x})", e.index, e.term));
                    }
                    Some(_) => {}
                    None => {
                        self.committed.insert(e.index, (e.term, h));
                    }
                }
            }
            self.checked.insert(id, applied);
        }
        let zxid = seq.committed_zxid().raw();
        let last = self.digested_at.get(&id).copied().unwrap_or(0);
        if force || zxid - last >= DIGEST_EVERY {
            let digest = seq.tree().digest();
            self.digested_at.insert(id, zxid);
            match self.digests.get(&zxid) {
                Some(&(other, d)) if d != digest => return Err(format!("at zxid 0x{zxid:x} server {id}'s tree digest is {digest:x}, server {other}'s {d:x}")),
                Some(_) => {}
                None => {
                    self.digests.insert(zxid, (id, digest));
                }
            }
        }
        Ok(())
    }

    /// A server restarted or took a snapshot: its log is read afresh.
    pub fn forget_log_of(&mut self, id: u64) {
        self.checked.remove(&id);
    }
}
