//! Durable storage behind the in-memory tree: the transaction log (read
//! through memory maps), snapshots, recovery at start-up and retention, and
//! the lock that keeps a second server off the same directories.

pub mod legacy;
pub mod lock;
pub mod log;
mod naming;
pub mod purge;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod snapshot;
pub mod zookeeper;
