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
//! leader's term; and that a read after a sync holds every write
//! acknowledged before the sync was sent. At the end, with every fault
//! healed, every server must hold every write a client had acknowledged.
//!
//! Four bugs can be planted (`core::planted`, test builds only), and
//! `sim::tests` shows each caught within the CI seed budget.
//!
//! What it does not model yet: shards and their reads, watches, the
//! client-history (linearizability) checker, disk corruption and ENOSPC,
//! observers, clients pipelining requests.

mod check;
pub(crate) mod rng;
mod world;

#[cfg(test)]
mod tests;

pub use world::{Outcome, SimOptions, run};
