//! Client requests: decoding a frame body (after its `RequestHeader`) into a
//! typed [`Request`].
//!
//! Decoding never trusts the peer: every length is checked against the frame,
//! and an opcode we do not know is reported as [`RequestError::UnknownOp`] so
//! the connection layer can answer Unimplemented and close, as ZooKeeper does.

use super::codes::OpCode;
use super::jute::{DecodeError, JuteReader};
use super::records::{Acl, MultiHeader, RequestHeader};
use bytes::Bytes;

/// The kind of node a create asks for, from `CreateRequest.flags` (`CreateMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    PersistentSequential,
    Ephemeral,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// Maps `CreateRequest.flags`; `None` for flags ZooKeeper rejects.
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// Whether the server appends a `%010d` sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(self, CreateMode::PersistentSequential | CreateMode::EphemeralSequential | CreateMode::PersistentSequentialWithTtl)
    }

    /// Whether the node belongs to the creating session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    /// Whether the node expires after a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

/// A create of any flavour: create, create2, createContainer, createTTL.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub path: String,
    pub data: Option<Bytes>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// Milliseconds; only meaningful for createTTL (0 otherwise).
    pub ttl: i64,
}

/// One operation inside a multi (write) transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MultiOp {
    /// `op` is the create opcode used (create, create2, createContainer or createTTL).
    Create {
        op: OpCode,
        req: CreateRequest,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// One operation inside a multiRead.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadOp {
    GetChildren {
        path: String,
    },
    GetData {
        path: String,
    },
    /// A delete, setData or check inside a multiRead: it decodes, and
    /// ZooKeeper then stops the multiRead at it with MarshallingError,
    /// returning the results gathered so far.
    NotARead {
        op: OpCode,
    },
}

/// The watches a client re-registers after reconnecting (setWatches /
/// setWatches2). A null list is kept as `None`: ZooKeeper processes the lists
/// in order and fails (MarshallingError) at the first null one, after the
/// earlier lists' events have gone out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetWatchesRequest {
    pub relative_zxid: i64,
    pub data: Option<Vec<String>>,
    pub exist: Option<Vec<String>>,
    pub child: Option<Vec<String>>,
    pub persistent: Option<Vec<String>>,
    pub persistent_recursive: Option<Vec<String>>,
}

/// A decoded request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// create, create2, createContainer and createTTL; the header's opcode says which.
    Create(CreateRequest),
    Delete {
        path: String,
        version: i32,
    },
    /// deleteContainer: delete only if the node is a container without children.
    DeleteContainer {
        path: String,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// getChildren and getChildren2; the header's opcode says which.
    GetChildren {
        path: String,
        watch: bool,
    },
    /// sync; a null path is echoed back as null.
    Sync {
        path: Option<String>,
    },
    Ping,
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    Reconfig,
    CheckWatches {
        path: String,
        watcher_type: i32,
    },
    RemoveWatches {
        path: String,
        watcher_type: i32,
    },
    Auth {
        scheme: String,
        auth: Bytes,
    },
    SetWatches(SetWatchesRequest),
    /// A step of SASL authentication: the client's token (`GetSASLRequest`).
    Sasl {
        token: Bytes,
    },
    /// A write whose body did not decode: like ZooKeeper, it still takes a
    /// zxid, and fails with MarshallingError.
    Malformed,
    /// getEphemerals; a null prefix means all.
    GetEphemerals {
        prefix: Option<String>,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
}

impl Request {
    /// Whether this request changes the tree or the sessions, and so goes
    /// through the broadcast core and the log.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Delete { .. }
                | Request::DeleteContainer { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Check { .. }
                | Request::Multi(_)
                | Request::Reconfig
                | Request::Malformed
                | Request::CloseSession
        )
    }
}

/// Why a request frame could not become a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The header's opcode is not one ZooKeeper defines (or one a client may not send).
    UnknownOp(i32),
    /// The body did not decode.
    Malformed(DecodeError),
    /// A multi named an op that cannot appear inside a multi.
    BadMultiOp(i32),
    /// A malformed auth or SASL packet: ZooKeeper closes the connection
    /// without replying.
    Fatal,
}

impl From<DecodeError> for RequestError {
    fn from(e: DecodeError) -> Self {
        RequestError::Malformed(e)
    }
}

/// A request body: its opcode and contents, or why it could not be read.
pub type DecodedBody = Result<(OpCode, Request), RequestError>;

/// Decodes a request frame: header, then body. The header is returned even
/// when the body fails, so the error reply can carry the request's xid.
pub fn decode(frame: Bytes) -> Result<(RequestHeader, DecodedBody), DecodeError> {
    let mut r = JuteReader::new(frame);
    let header = RequestHeader::read(&mut r)?;
    let body = match OpCode::from_i32(header.op) {
        None | Some(OpCode::Error) | Some(OpCode::CreateSession) => Err(RequestError::UnknownOp(header.op)),
        Some(op) => decode_body(op, &mut r).map(|req| (op, req)),
    };
    Ok((header, body))
}

fn decode_body(op: OpCode, r: &mut JuteReader) -> Result<Request, RequestError> {
    use OpCode as O;
    Ok(match op {
        O::Create | O::Create2 | O::CreateContainer | O::CreateTtl => Request::Create(create_request(op, r)?),
        O::Delete => Request::Delete { path: r.ustring()?, version: r.int()? },
        O::DeleteContainer => Request::DeleteContainer { path: r.ustring()? },
        O::Exists => Request::Exists { path: r.ustring()?, watch: r.boolean()? },
        O::GetData => Request::GetData { path: r.ustring()?, watch: r.boolean()? },
        // setData, setACL and check validate a null path (BadArguments) before using it.
        O::SetData => Request::SetData { path: validated_path(r)?, data: r.buffer()?, version: r.int()? },
        O::GetAcl => Request::GetAcl { path: r.ustring()? },
        O::SetAcl => Request::SetAcl { path: validated_path(r)?, acl: Acl::read_list(r)?, version: r.int()? },
        O::GetChildren | O::GetChildren2 => Request::GetChildren { path: r.ustring()?, watch: r.boolean()? },
        O::Sync => Request::Sync { path: r.ustring_opt()? },
        O::Ping => Request::Ping,
        O::Check => Request::Check { path: validated_path(r)?, version: r.int()? },
        O::Multi => Request::Multi(multi_ops(r)?),
        O::MultiRead => Request::MultiRead(read_ops(r)?),
        O::Reconfig => {
            let (_joining, _leaving, _members, _config_id) = (r.ustring_opt()?, r.ustring_opt()?, r.ustring_opt()?, r.long()?);
            Request::Reconfig
        }
        O::CheckWatches => Request::CheckWatches { path: r.ustring()?, watcher_type: r.int()? },
        O::RemoveWatches => Request::RemoveWatches { path: r.ustring()?, watcher_type: r.int()? },
        O::Auth => {
            // A null scheme is an unknown scheme (AuthFailed); a truncated packet closes.
            let auth = (|| Ok::<_, DecodeError>((r.int()?, r.ustring_opt()?.unwrap_or_default(), r.buffer()?.unwrap_or_default())))();
            let (_auth_type, scheme, auth) = auth.map_err(|_| RequestError::Fatal)?;
            Request::Auth { scheme, auth }
        }
        O::SetWatches | O::SetWatches2 => Request::SetWatches(set_watches(op, r)?),
        O::Sasl => {
            // A missing or null token makes ZooKeeper drop the connection.
            Request::Sasl { token: r.buffer().ok().flatten().ok_or(RequestError::Fatal)? }
        }
        O::GetEphemerals => Request::GetEphemerals { prefix: r.ustring_opt()? },
        O::GetAllChildrenNumber => Request::GetAllChildrenNumber { path: r.ustring()? },
        O::AddWatch => Request::AddWatch { path: r.ustring()?, mode: r.int()? },
        O::WhoAmI => Request::WhoAmI,
        O::CloseSession => Request::CloseSession,
        O::CreateSession | O::Error => unreachable!("filtered by decode"),
    })
}

fn create_request(op: OpCode, r: &mut JuteReader) -> Result<CreateRequest, DecodeError> {
    let path = r.ustring()?;
    let data = r.buffer()?;
    let acl = Acl::read_list(r)?;
    let flags = r.int()?;
    let ttl = if op == OpCode::CreateTtl { r.long()? } else { 0 };
    Ok(CreateRequest { path, data, acl, flags, ttl })
}

fn multi_ops(r: &mut JuteReader) -> Result<Vec<MultiOp>, RequestError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = OpCode::from_i32(h.op).ok_or(RequestError::BadMultiOp(h.op))?;
        ops.push(match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                let req = create_request(op, r)?;
                MultiOp::Create { op: multi_create_op(op, req.flags)?, req }
            }
            OpCode::Delete => MultiOp::Delete { path: r.ustring()?, version: r.int()? },
            OpCode::SetData => MultiOp::SetData { path: validated_path(r)?, data: r.buffer()?, version: r.int()? },
            OpCode::Check => MultiOp::Check { path: validated_path(r)?, version: r.int()? },
            _ => return Err(RequestError::BadMultiOp(h.op)),
        });
    }
}

/// A path the server validates before use: null reads as "", which fails
/// validation (BadArguments) exactly as ZooKeeper's null check does.
fn validated_path(r: &mut JuteReader) -> Result<String, DecodeError> {
    Ok(r.ustring_opt()?.unwrap_or_default())
}

/// The create opcode a multi op really is. ZooKeeper 3.8 rebuilds each
/// create inside a multi from its flags (`Op.create`): container flags make a
/// createContainer, TTL flags a createTTL (allowed only in a createTTL op, or
/// the whole multi fails to decode), anything else a plain create, whose
/// result then carries the path only.
fn multi_create_op(op: OpCode, flags: i32) -> Result<OpCode, RequestError> {
    let Some(mode) = CreateMode::from_flags(flags) else { return Ok(op) };
    Ok(match mode {
        CreateMode::Container => OpCode::CreateContainer,
        _ if mode.is_ttl() && op == OpCode::CreateTtl => OpCode::CreateTtl,
        _ if mode.is_ttl() => return Err(RequestError::BadMultiOp(op as i32)),
        _ => OpCode::Create,
    })
}

fn read_ops(r: &mut JuteReader) -> Result<Vec<ReadOp>, RequestError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(match OpCode::from_i32(h.op) {
            Some(OpCode::GetChildren) => {
                let path = r.ustring()?;
                let _watch = r.boolean()?;
                ReadOp::GetChildren { path }
            }
            Some(OpCode::GetData) => {
                let path = r.ustring()?;
                let _watch = r.boolean()?;
                ReadOp::GetData { path }
            }
            Some(op @ (OpCode::Delete | OpCode::Check)) => {
                let (_path, _version) = (r.ustring()?, r.int()?);
                ReadOp::NotARead { op }
            }
            Some(op @ OpCode::SetData) => {
                let (_path, _data, _version) = (r.ustring()?, r.buffer()?, r.int()?);
                ReadOp::NotARead { op }
            }
            _ => return Err(RequestError::BadMultiOp(h.op)),
        });
    }
}

fn set_watches(op: OpCode, r: &mut JuteReader) -> Result<SetWatchesRequest, DecodeError> {
    let mut req = SetWatchesRequest {
        relative_zxid: r.long()?,
        data: r.strings_opt()?,
        exist: r.strings_opt()?,
        child: r.strings_opt()?,
        persistent: Some(Vec::new()),
        persistent_recursive: Some(Vec::new()),
    };
    if op == OpCode::SetWatches2 {
        req.persistent = r.strings_opt()?;
        req.persistent_recursive = r.strings_opt()?;
    }
    Ok(req)
}
