//! The consensus engine's side of keeper: raft-rs (`raft`) holds the log
//! and decides what commits; this module gives it its storage
//! ([`store::RaftStore`]) and converts its messages to keeper's peer wire
//! form ([`wire`]). The sequencer drives the raft node.

pub mod frame;
pub mod store;
pub mod wire;

/// Where an entry sits in the raft log: its index and the term of the
/// leader that appended it. (0, 0) is before the first entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    pub index: u64,
    pub term: u64,
}

/// How often the raft node ticks, in milliseconds.
pub const RAFT_TICK_MS: i64 = 50;
/// Ticks without a leader's heartbeat before a follower stands for
/// election (raft randomises it up to twice this), and without hearing
/// from a quorum before a leader steps down: 1-2 s. 400-800 ms was too
/// short under overload: populating 1M znodes through a 3-server ensemble
/// on 2 shared cores, the leader stepped down (no follower answered in
/// time while all three wrote snapshots) and every client connection was
/// closed. A killed leader is noticed sooner (its peer port refuses
/// connections); a paused one is replaced in 1-2 s.
pub const ELECTION_TICKS: usize = 20;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// The largest append message raft builds (entries are batched up to it).
pub const MESSAGE_BYTES_MAX: u64 = 1 << 20;
/// Append messages in flight to one follower: bounds what a slow follower costs.
pub const INFLIGHT_MESSAGES_MAX: usize = 256;

const _: () = assert!(HEARTBEAT_TICKS < ELECTION_TICKS, "raft needs heartbeats well inside the election timeout");

/// The voters and learners of an ensemble, by server id, from the
/// configuration: participants vote, observers learn. A standalone server
/// is the only voter of an ensemble of one.
pub fn membership(cfg: &crate::config::Config) -> (Vec<u64>, Vec<u64>) {
    if cfg.servers.is_empty() {
        return (vec![cfg.my_id as u64], Vec::new());
    }
    let of = |role| cfg.servers.iter().filter(|s| s.role == role).map(|s| s.id as u64).collect();
    (of(crate::config::Role::Participant), of(crate::config::Role::Observer))
}
