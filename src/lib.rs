//! keeper: a ZooKeeper-compatible coordination service, thread-per-core.
//!
//! # Layout
//! - [`proto`]: the client wire protocol (framing, jute records, codes).
//! - [`core`]: pure logic: the data tree, watches, ACLs, prep of writes into
//!   transactions, session expiry. No I/O, no clock.

pub mod core;
pub mod proto;
