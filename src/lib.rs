//! keeper: a ZooKeeper-compatible coordination service, thread-per-core.
//!
//! # Layout
//! - [`proto`]: the client wire protocol (framing, jute records, codes).
//! - [`core`]: pure logic: the data tree, watches, ACLs, reads, prep of
//!   writes into transactions, session expiry. No I/O, no clock.
//! - [`storage`]: the transaction log, snapshots, recovery.
//! - [`runtime`]: glommio glue: the broadcast core, shard cores, channels.
//! - [`server`]: configuration, four-letter words, the command line.

pub mod core;
pub mod proto;
pub mod runtime;
pub mod server;
pub mod storage;
