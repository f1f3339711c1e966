//! The invariants the simulator checks after every step, from what every
//! server shows: at most one leader per term, one committed entry per
//! index everywhere, one tree digest per applied zxid everywhere, and
//! every queue of the sequencer within its bound (memory stays bounded).

use crate::core::sequencer::{QueueLengths, Sequencer};
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

/// The most each of a sequencer's queues may hold, from the workload: what
/// clients can have in flight, and the sessions that exist. A queue that
/// outgrows its bound keeps something it should have let go (a leak that a
/// long-running server would die of).
#[derive(Debug, Clone, Copy)]
pub struct QueueBounds {
    /// Requests (writes, syncs, handshakes) that can be in flight anywhere:
    /// each client's whole pipeline, left behind at every server (a client
    /// that gives up on a server leaves its requests there).
    requests: usize,
    /// Sessions a server can know beyond those in its tree: one being
    /// opened by each handshake in flight.
    opening: usize,
}

impl QueueBounds {
    /// The bounds for `servers` servers and `clients` clients, each with
    /// at most `pipeline` requests in flight.
    pub fn of_workload(servers: usize, clients: usize, pipeline: usize) -> QueueBounds {
        let requests = servers * clients * (pipeline + 1);
        QueueBounds { requests, opening: requests }
    }

    /// Holds `seq`'s queues to the bounds.
    pub fn check(&self, seq: &Sequencer) -> Result<(), String> {
        let q = seq.queue_lengths();
        let QueueLengths {
            held,
            proposed,
            origins,
            syncs,
            replies,
            unpersisted,
            handshakes,
            owners,
            session_servers,
            raft_messages,
            raft_unstable,
            raft_read_states,
        } = q;
        let sessions = seq.tree().sessions().len() + self.opening;
        // Proposals: the clients' writes, plus a close (an expiry) of every session.
        let within = [
            ("held writes", held, self.requests),
            ("proposed transactions", proposed, self.requests + sessions),
            ("reply origins", origins, self.requests),
            ("pending syncs", syncs, self.requests),
            ("queued replies", replies, self.requests),
            ("readies awaiting a persist", unpersisted, 2),
            ("unanswered handshakes", handshakes, self.requests),
            ("attached sessions", owners, sessions),
            ("sessions' servers", session_servers, sessions),
            ("raft messages", raft_messages, self.requests),
            ("raft's unstable entries", raft_unstable, self.requests + sessions),
            ("raft read states", raft_read_states, self.requests),
        ];
        match within.iter().find(|(_, len, bound)| len > bound) {
            Some((what, len, bound)) => Err(format!("{len} {what}, over the bound of {bound}: {q:?}")),
            None => Ok(()),
        }
    }
}
