//! keeper: a ZooKeeper-compatible coordination service, thread-per-core.
//!
//! # Layout
//! Each module imports only the ones listed before it (`tests/layers.rs`
//! checks this), so no two modules import each other.
//! - [`proto`]: the client wire protocol (framing, jute records, codes).
//! - [`config`]: the configuration (Apache ZooKeeper's zoo.cfg) and its parser.
//! - [`core`]: pure logic: the data tree, watches, ACLs, reads, prep of
//!   writes into transactions, session expiry, the messages between cores.
//!   No I/O, no clock.
//! - [`storage`]: the transaction log, snapshots, recovery.
//! - [`runtime`]: glommio glue: the broadcast core, shard cores, channels,
//!   the four-letter words the shards answer.
//! - [`server`]: the command line and the data inspection tools.

pub mod config;
pub mod core;
pub mod log;
pub mod proto;
pub mod runtime;
pub mod server;
pub mod storage;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod sim;
