//! The consensus engine's side of keeper: raft-rs (`raft`) holds the log
//! and decides what commits; this module gives it its storage
//! ([`store::RaftStore`]) and converts its messages to keeper's peer wire
//! form ([`wire`]). The sequencer drives the raft node.

pub mod store;
pub mod wire;
