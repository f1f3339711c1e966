//! Deterministic simulation of whole ensembles (test builds only).
//!
//! One thread runs N servers and M clients on the real code: each server
//! is a [`Sequencer`](crate::core::sequencer::Sequencer) (the raft node,
//! prep and apply, sessions) over an in-memory log with the file log's
//! contract ([`MemLog`](crate::storage::log::MemLog)), restarted through
//! the same recovery step as a real server (apply every committed entry of
//! the durable log after the durable snapshot). Only the I/O boundary is
//! the simulator's: a seeded [`rng::Rng`] owns the clock, the network
//! (delay, reorder, drop, duplicate, partitions), the disk (how long each
//! sync takes, and what a crash loses: everything not yet synced) and the
//! processes (crash and restart, pause and resume, wall-clock jumps). A run
//! is a function of its seed, and a test checks that the same seed gives
//! the same trace digest.
//!
//! After every step [`check::Checker`] holds every server against the
//! invariants: at most one leader per term, one committed entry per index
//! everywhere, one tree digest per zxid everywhere. The world itself checks
//! that a session expires no sooner than its timeout after its creation,
//! its last touch that reached a leader, and the start of the expiring
//! leader's term; that a server that applied a session's close holds none
//! of its ephemerals; and [`history::History`] checks every client's
//! history (writes linearizable, reads sequentially consistent per client,
//! sync-then-read linearizable). At the end, with every fault healed, every
//! server must hold every write a client had acknowledged.
//!
//! Four bugs can be planted (`core::planted`, test builds only), and
//! `sim::tests` shows each caught within the CI seed budget.
//!
//! What it does not model yet: shards (reads are served from the
//! sequencer's committed tree, which a shard's replica follows) and
//! watches, disk corruption (bit flips, torn writes) and ENOSPC in the
//! simulated log (real-process tests cover them), clock drift (jumps only),
//! clients pipelining requests, and bounds on the sequencer's queues.

mod check;
mod disk;
mod history;
pub(crate) mod rng;
mod world;

#[cfg(test)]
mod tests;

pub use world::{DiskFaults, Outcome, SimOptions, run};
