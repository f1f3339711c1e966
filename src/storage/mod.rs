//! Durable storage behind the in-memory tree: the memory-mapped transaction
//! log, snapshots, recovery at start-up and retention.

pub mod log;
mod naming;
pub mod purge;
pub mod record;
pub mod recovery;
pub mod snapshot;
