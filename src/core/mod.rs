//! Pure logic: no glommio, no sockets, no files, no clock, no randomness.
//! Time enters as arguments, so everything here runs the same in tests, in
//! the server and in a simulator.

pub mod acl;
pub mod consensus;
pub mod messages;
pub mod outstanding;
pub mod path;
#[cfg(test)]
pub mod planted;
pub mod prep;
pub mod read;
pub mod reply;
pub mod sasl;
pub mod sequencer;
pub mod session;
pub mod tree;
pub mod txn;
pub mod zxid;
