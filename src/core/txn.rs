//! Transactions: the deterministic result of preparing a write.
//!
//! A [`Txn`] carries everything a replica needs to change its tree exactly as
//! every other replica does: the zxid and time are stamped once, by the
//! broadcast core, and the final path of a sequential node is already chosen.
//! Transactions are what the log stores (rkyv-serialized) and what the
//! broadcast core streams to the shards.
//!
//! A write that fails its checks still becomes a transaction (`Error`, or a
//! `Multi` whose ops are all `Error`): like ZooKeeper, a failed write consumes
//! a zxid, and the reply carries it.

use crate::core::zxid::Zxid;
use crate::proto::records::Acl;
use bytes::Bytes;
use rkyv::{Archive, Deserialize, Serialize};

/// How a node lives and dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub enum NodeKind {
    /// Lives until deleted.
    Persistent,
    /// Deleted when its owning session ends.
    Ephemeral { session_id: i64 },
    /// Deleted by the server once it has had a child and is empty again.
    Container,
    /// Deleted by the server once childless and unmodified for `ttl_ms`.
    Ttl { ttl_ms: i64 },
}

impl NodeKind {
    /// The owning session of an ephemeral node, 0 otherwise: what `Stat.ephemeralOwner` shows.
    pub fn ephemeral_owner(self) -> i64 {
        match self {
            NodeKind::Ephemeral { session_id } => session_id,
            _ => 0,
        }
    }
}

/// One change inside a transaction (alone or within a multi).
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub enum TxnOp {
    /// Creates `path` (final, with any sequence suffix) under an existing parent.
    Create { path: String, data: Option<Bytes>, acl: Vec<Acl>, kind: NodeKind },
    /// Deletes a childless node.
    Delete { path: String },
    /// Replaces a node's data; `version` is the node's new version.
    SetData { path: String, data: Option<Bytes>, version: i32 },
    /// Replaces a node's ACL; `version` is the node's new aversion.
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    /// A version check that passed (multi only); changes nothing.
    Check { path: String },
    /// A failed op: nothing changes, the reply carries this error code.
    Error { code: i32 },
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub enum TxnBody {
    /// Opens a session with its negotiated timeout.
    CreateSession { timeout_ms: i32 },
    /// Ends the session and deletes its ephemeral nodes.
    CloseSession,
    /// A single change (or a single failure).
    Single(TxnOp),
    /// All of these, or (when any failed) none: then every op is `Error`.
    Multi(Vec<TxnOp>),
}

/// A stamped transaction.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct Txn {
    /// The transaction's id (see [`Zxid`]); archived as one i64, as before
    /// the type existed, so older logs read unchanged.
    pub zxid: Zxid,
    /// Wall-clock milliseconds when the broadcast core prepared it.
    pub time_ms: i64,
    /// The session that asked for it (or whose expiry caused it).
    pub session_id: i64,
    /// The request's xid, so the owning shard can match its reply.
    pub cxid: i32,
    pub body: TxnBody,
}

/// A transaction as the log stores it: its zxid and its rkyv bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub zxid: Zxid,
    pub payload: Vec<u8>,
}

impl Txn {
    /// The record the log stores.
    pub fn to_record(&self) -> LogRecord {
        LogRecord { zxid: self.zxid, payload: self.to_bytes() }
    }

    /// Serializes for the log.
    pub fn to_bytes(&self) -> Vec<u8> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self).expect("serializing a Txn cannot fail").into_vec()
    }

    /// Validates and deserializes a log record's payload.
    pub fn from_bytes(bytes: &[u8]) -> Result<Txn, rkyv::rancor::Error> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<Txn, rkyv::rancor::Error>(&aligned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::Id;

    #[test]
    fn round_trips_through_rkyv() {
        let txn = Txn {
            zxid: Zxid::new(1, 5),
            time_ms: 1_700_000_000_000,
            session_id: 42,
            cxid: 7,
            body: TxnBody::Multi(vec![
                TxnOp::Create {
                    path: "/a".into(),
                    data: Some(Bytes::from_static(b"x")),
                    acl: vec![Acl { perms: 31, id: Id::new("world", "anyone") }],
                    kind: NodeKind::Ttl { ttl_ms: 5 },
                },
                TxnOp::SetData { path: "/a".into(), data: None, version: 1 },
                TxnOp::Error { code: -101 },
            ]),
        };
        let bytes = txn.to_bytes();
        assert_eq!(Txn::from_bytes(&bytes).unwrap(), txn);
        assert!(Txn::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    }
}
