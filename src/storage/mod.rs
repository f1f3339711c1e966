//! Durable storage: the transaction log (and, later, snapshots) behind the
//! in-memory tree.

pub mod log;
pub mod record;
