//! Deterministic simulation of whole ensembles (test builds only).
//!
//! One thread runs N servers and M clients on the real code: each server
//! is a [`Sequencer`](crate::core::sequencer::Sequencer) (the raft node,
//! prep and apply, sessions) with two shard cores
//! ([`ShardState`](crate::runtime::shard::ShardState): connections,
//! replicas of the tree, reads, watches, reply order), over an in-memory log
//! with the file log's contract ([`MemLog`](crate::storage::log::MemLog)),
//! restarted through the same recovery step as a real server (apply every
//! committed entry of the durable log after the durable snapshot). Clients
//! speak the wire protocol to a shard: jute frames in, jute frames out,
//! several requests in flight at once, watches on what they read. Only the
//! I/O boundary is the simulator's: a seeded [`rng::Rng`] owns the clocks
//! (each drifts; wall clocks jump), the network (delay, reorder, drop,
//! duplicate, one- and two-way partitions), the disk (how long each sync
//! takes; a sync that fails for want of space; what a crash leaves: the
//! synced records, perhaps unsynced ones, a torn last write, now and then a
//! flipped bit, all read back by the real segment reader) and the
//! processes (crash and restart, power cuts, pause and resume). A run is a
//! function of its seed, and a test checks that the same seed gives the
//! same trace digest.
//!
//! After every step [`check::Checker`] holds every server against the
//! invariants: at most one leader per term, one committed entry per index
//! everywhere, one tree digest per zxid everywhere, and every sequencer
//! queue within its bound. The world itself checks that a session expires
//! no sooner than its timeout (less clock drift) after its creation, its
//! last touch that reached a leader, and the start of the expiring
//! leader's term; that a server that applied a session's close holds none
//! of its ephemerals; that replies come in request order; and
//! [`history::History`] checks every client's history (writes
//! linearizable, reads sequentially consistent per client, sync-then-read
//! linearizable, watch events before any reply that reflects their change).
//! At the end, with every fault healed, every server must hold every write
//! a client had acknowledged.
//!
//! Five bugs can be planted (`core::planted`, test builds only), and
//! `sim::tests` shows each caught within the CI seed budget.
//!
//! Not modelled: clients re-registering their watches after a reconnect
//! (setWatches), four-letter words, and the peer links' own framing (the
//! simulator hands messages over whole; the fuzzers cover their decoders).

mod check;
mod client;
mod disk;
mod history;
pub(crate) mod rng;
mod world;

#[cfg(test)]
mod tests;

pub use world::{DiskFaults, Outcome, SimOptions, run};
