//! The payload of a ZooKeeper log record (`SerializeUtils.deserializeTxn`):
//! a `TxnHeader`, the body its type names, and from 3.6 an optional
//! 12-byte `TxnDigest`, which this reader skips.
//!
//! ```text
//! TxnHeader = long session | int cxid | long zxid | long time ms | int type
//! 1, 15  CreateTxn          = ustring path | buffer data | vector<ACL> | boolean ephemeral | int parentCVersion
//!                             (type 1 from before 3.3 lacks parentCVersion: CreateTxnV0)
//! 19     CreateContainerTxn = ustring path | buffer data | vector<ACL> | int parentCVersion
//! 21     CreateTTLTxn       = ustring path | buffer data | vector<ACL> | int parentCVersion | long ttl
//! 2, 20  DeleteTxn          = ustring path
//! 5, 16  SetDataTxn         = ustring path | buffer data | int version (16: reconfig)
//! 7      SetACLTxn          = ustring path | vector<ACL> | int version
//! -10    CreateSessionTxn   = int timeout ms
//! -11    CloseSessionTxn    = vector<ustring> paths (3.6+; none before)
//! -1     ErrorTxn           = int code
//! 13     CheckVersionTxn    = ustring path | int version (only inside a multi)
//! 14     MultiTxn           = vector<(int type, buffer body)>
//! ```

use super::model::CONTAINER_OWNER;
use crate::proto::jute::{DecodeError, JuteReader};
use crate::proto::records::Acl;
use bytes::Bytes;

/// `TxnHeader`.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub session: i64,
    pub zxid: i64,
    pub time: i64,
}

/// One change, as `DataTree.processTxn` applies it.
#[derive(Debug, Clone)]
pub enum Op {
    /// Every kind of create; `owner` is the ephemeralOwner the node gets.
    Create {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        owner: i64,
        parent_cversion: i32,
        plain: bool,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    CreateSession {
        timeout_ms: i32,
    },
    /// `paths`: what the txn names (3.6+), else the session's ephemerals.
    CloseSession {
        paths: Option<Vec<String>>,
    },
    /// A failed request, or a check: no change.
    Nothing,
    /// All or nothing: a multi with a failed op changes nothing.
    Multi(Vec<Op>),
}

/// A logged transaction.
#[derive(Debug, Clone)]
pub struct Txn {
    pub header: Header,
    pub op: Op,
}

const ERROR: i32 = -1;
const TTL_OWNER_BASE: i64 = 0xFF << 56;

/// Parses one record's payload.
pub fn parse(payload: &[u8]) -> Result<Txn, String> {
    let mut r = JuteReader::new(Bytes::copy_from_slice(payload));
    let fail = |e: DecodeError| format!("malformed transaction: {e}");
    let session = r.long().map_err(fail)?;
    let _cxid = r.int().map_err(fail)?;
    let zxid = r.long().map_err(fail)?;
    let time = r.long().map_err(fail)?;
    let kind = r.int().map_err(fail)?;
    let header = Header { session, zxid, time };
    let op = match kind {
        // A closeSession has a body from 3.6 on, unless it was switched off:
        // what is left (nothing, or only a 12-byte digest) tells.
        -11 if matches!(r.remaining(), 0 | 12) => Op::CloseSession { paths: None },
        -11 => Op::CloseSession { paths: Some(r.strings().map_err(fail)?) },
        -10 => Op::CreateSession { timeout_ms: r.int().map_err(fail)? },
        14 => {
            let n = r.count().map_err(fail)?.unwrap_or(0);
            let mut subs = Vec::with_capacity(n.min(1024));
            let mut failed = false;
            for _ in 0..n {
                let sub_kind = r.int().map_err(fail)?;
                let body = r.buffer().map_err(fail)?.unwrap_or_default();
                failed |= sub_kind == ERROR;
                subs.push(body_op(sub_kind, session, &mut JuteReader::new(body)).map_err(|e| format!("{e}, in a multi"))?);
            }
            if failed { Op::Nothing } else { Op::Multi(subs) }
        }
        1 => {
            // CreateTxnV0 (before 3.3) has no parentCVersion: read again without it.
            let mut again = JuteReader::new(Bytes::copy_from_slice(&payload[payload.len() - r.remaining()..]));
            match decode_body(kind, session, &mut r) {
                Err(DecodeError::Truncated) => create_v0(session, &mut again).map_err(fail)?,
                other => other.map_err(fail)?.expect("type 1 is known"),
            }
        }
        _ => body_op(kind, session, &mut r)?,
    };
    Ok(Txn { header, op })
}

/// The body of a single (or a multi's) transaction of type `kind`.
fn body_op(kind: i32, session: i64, r: &mut JuteReader) -> Result<Op, String> {
    match decode_body(kind, session, r) {
        Ok(Some(op)) => Ok(op),
        Ok(None) => Err(format!("unknown transaction type {kind}")),
        Err(e) => Err(format!("malformed transaction of type {kind}: {e}")),
    }
}

/// Decodes a body; `None` for a type that has none of these bodies.
fn decode_body(kind: i32, session: i64, r: &mut JuteReader) -> Result<Option<Op>, DecodeError> {
    Ok(Some(match kind {
        1 | 15 => {
            let (path, data, acl) = (r.ustring()?, r.buffer()?, Acl::read_list(r)?);
            let ephemeral = r.boolean()?;
            let parent_cversion = r.int()?;
            Op::Create { path, data, acl, owner: if ephemeral { session } else { 0 }, parent_cversion, plain: kind == 1 }
        }
        19 => {
            let (path, data, acl, parent_cversion) = (r.ustring()?, r.buffer()?, Acl::read_list(r)?, r.int()?);
            Op::Create { path, data, acl, owner: CONTAINER_OWNER, parent_cversion, plain: false }
        }
        21 => {
            let (path, data, acl, parent_cversion, ttl) = (r.ustring()?, r.buffer()?, Acl::read_list(r)?, r.int()?, r.long()?);
            Op::Create { path, data, acl, owner: TTL_OWNER_BASE | (ttl & 0xFF_FFFF_FFFF), parent_cversion, plain: false }
        }
        2 | 20 => Op::Delete { path: r.ustring()? },
        5 | 16 => Op::SetData { path: r.ustring()?, data: r.buffer()?, version: r.int()? },
        7 => Op::SetAcl { path: r.ustring()?, acl: Acl::read_list(r)?, version: r.int()? },
        13 | ERROR => Op::Nothing,
        _ => return Ok(None),
    }))
}

/// `CreateTxnV0`: a create without parentCVersion (-1: the parent's + 1).
fn create_v0(session: i64, r: &mut JuteReader) -> Result<Op, DecodeError> {
    let (path, data, acl) = (r.ustring()?, r.buffer()?, Acl::read_list(r)?);
    let owner = if r.boolean()? { session } else { 0 };
    Ok(Op::Create { path, data, acl, owner, parent_cversion: -1, plain: true })
}
