//! What a shard does with one frame from a client: the handshake, then each
//! request routed to the right place (answered now, queued behind a write,
//! forwarded to the broadcast core, or answered outside the order, as
//! ZooKeeper does for auth and SASL).

use super::conn::{Conn, Pending, Phase};
use super::{ShardState, read_only};
use crate::core::acl::{self, AuthOutcome};
use crate::core::messages::{ConnectInfo, Origin, ServeMode, ToBroadcast};
use crate::core::reply::ReplyShape;
use crate::core::sasl::Step;
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::frame::ConnectRequest;
use crate::proto::records::Id;
use crate::proto::request::{self, Request, RequestError};
use crate::proto::response::Response;
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// What the connection's reader must do after a frame.
#[derive(Debug)]
pub enum Action {
    /// Nothing more: keep reading.
    None,
    /// Send this to the broadcast core (may wait for room), then keep reading.
    Send(ToBroadcast),
    /// Stop reading; the connection closes once its output is flushed.
    Close,
}

/// Writes whose undecodable body still becomes a (failed) transaction in
/// ZooKeeper 3.8; for other requests a decode failure costs no zxid.
fn writes_take_a_zxid_when_malformed(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Multi
    )
}

impl ShardState {
    /// Handles one complete frame from `c`.
    pub fn on_frame(&mut self, c: &Rc<Conn>, frame: Bytes) -> Action {
        self.counters.packets_received += 1;
        self.counters.bytes_received += frame.len() as u64 + 4;
        let phase = {
            let mut inner = c.inner.borrow_mut();
            inner.stats.received += 1;
            inner.phase
        };
        match phase {
            Phase::New => self.on_connect(c, frame),
            Phase::Active => self.on_request(c, frame),
            Phase::Connecting | Phase::FourLetter(_) | Phase::Admin(_) | Phase::Closing => Action::None,
        }
    }

    fn on_connect(&mut self, c: &Rc<Conn>, frame: Bytes) -> Action {
        let Ok(req) = ConnectRequest::read(frame) else {
            crate::warn_limited!(peer = %c.peer, "malformed ConnectRequest, closing");
            return Action::Close;
        };
        match self.serve {
            // As a ZooKeeper server outside its quorum: no answer; the client tries another server.
            ServeMode::Closed | ServeMode::Draining => return Action::Close,
            ServeMode::ReadOnly => return self.connect_read_only(c, &req),
            ServeMode::ReadWrite => {}
        }
        let mut inner = c.inner.borrow_mut();
        inner.read_only_byte = req.sent_read_only;
        inner.phase = Phase::Connecting;
        let info = ConnectInfo { session_id: req.session_id, passwd: req.passwd, timeout_ms: req.timeout_ms, last_zxid_seen: req.last_zxid_seen };
        Action::Send(ToBroadcast::Connect { origin: Origin { shard: self.id, conn: c.id }, info })
    }

    fn on_request(&mut self, c: &Rc<Conn>, frame: Bytes) -> Action {
        let start = Instant::now();
        let Ok((header, body)) = request::decode(frame) else {
            crate::warn_limited!(peer = %c.peer, "request header truncated, closing");
            return Action::Close;
        };
        let xid = header.xid;
        let session_id = c.inner.borrow().session_id;
        self.touched.insert(session_id);
        let (op, req) = match body {
            Ok(decoded) => decoded,
            Err(RequestError::UnknownOp(code)) => {
                crate::warn_limited!(peer = %c.peer, "unknown opcode {code}, closing");
                return self.refuse(c, xid, start);
            }
            Err(RequestError::Fatal) => {
                crate::warn_limited!(peer = %c.peer, "malformed auth or SASL packet, closing");
                return Action::Close;
            }
            Err(err) => {
                crate::warn_limited!(peer = %c.peer, "malformed request ({err:?}), answering MarshallingError");
                let op = OpCode::from_i32(header.op).expect("known opcodes decode or fail here");
                if writes_take_a_zxid_when_malformed(op) {
                    // ZooKeeper logs a failed write even when its body did not decode.
                    (op, Request::Malformed)
                } else {
                    return self.answer_in_order(c, Pending::Ready { xid, op, result: Err(ErrorCode::MarshallingError), start, zxid: None });
                }
            }
        };
        if self.serve == ServeMode::ReadOnly && read_only::refused(op, &req) {
            return self.refuse_read_only(c, xid, op, start);
        }
        if !matches!(op, OpCode::Auth | OpCode::Sasl) && !self.authenticated_enough(c) {
            // As ZooKeeper's AuthenticationHelper: the error, then the connection closes.
            crate::warn_limited!(peer = %c.peer, session = %format_args!("0x{session_id:x}"), "not authenticated with {:?}; closing", self.cfg.enforce_auth_schemes);
            c.inner.borrow_mut().reply(xid, 0, &Err(ErrorCode::SessionClosedRequireSaslAuth), op, start);
            self.mark_dirty(c.id);
            return Action::Close;
        }
        match op {
            OpCode::Auth => self.authenticate(c, xid, &req, start),
            OpCode::Sasl => self.sasl_step(c, xid, &req, start),
            // ZooKeeper 3.9 refuses a check outside a multi (ZOOKEEPER-2623).
            OpCode::Check => self.refuse(c, xid, start),
            OpCode::Sync => {
                let Request::Sync { path } = req else { unreachable!("sync decodes to Request::Sync") };
                c.inner.borrow_mut().pending.push_back(Pending::Write { xid, shape: ReplyShape::of(op, &Request::Sync { path: path.clone() }), start });
                self.budget.take();
                Action::Send(ToBroadcast::Sync { origin: Origin { shard: self.id, conn: c.id }, cxid: xid, path })
            }
            _ if req.is_write() => {
                let ids = {
                    let mut inner = c.inner.borrow_mut();
                    inner.pending.push_back(Pending::Write { xid, shape: ReplyShape::of(op, &req), start });
                    inner.ids.clone()
                };
                self.budget.take();
                Action::Send(ToBroadcast::Write { origin: Origin { shard: self.id, conn: c.id }, session_id, cxid: xid, op, req, ids })
            }
            _ => {
                let min_zxid = self.read_barrier();
                self.answer_in_order(c, Pending::Read { xid, op, req, start, min_zxid })
            }
        }
    }

    /// Queues an answer behind earlier requests (or behind the replica
    /// catching up), or sends it now.
    pub(super) fn answer_in_order(&mut self, c: &Rc<Conn>, item: Pending) -> Action {
        let stale = matches!(item, Pending::Read { min_zxid, .. } if min_zxid > self.tree.last_zxid().raw());
        let mut inner = c.inner.borrow_mut();
        if !inner.pending.is_empty() || stale {
            inner.pending.push_back(item);
            if stale && inner.pending.len() == 1 {
                self.waiting.insert(c.id);
            }
            return Action::None;
        }
        drop(inner);
        match item {
            Pending::Ready { xid, op, result, start, .. } => {
                let zxid = self.tree.last_zxid().raw();
                c.inner.borrow_mut().reply(xid, zxid, &result, op, start);
                self.mark_dirty(c.id);
            }
            Pending::Read { xid, op, req, start, .. } => self.answer_read(c, xid, op, &req, start),
            Pending::Write { .. } => unreachable!("writes are queued by on_request"),
        }
        Action::None
    }

    /// Unimplemented with zxid -1, then close (unknown opcode, lone check).
    fn refuse(&mut self, c: &Rc<Conn>, xid: i32, start: Instant) -> Action {
        c.inner.borrow_mut().reply(xid, -1, &Err(ErrorCode::Unimplemented), OpCode::Error, start);
        self.mark_dirty(c.id);
        Action::Close
    }

    /// Whether the connection has authenticated with a scheme the server
    /// requires (enforce.auth.schemes), or none is required.
    fn authenticated_enough(&self, c: &Rc<Conn>) -> bool {
        let schemes = &self.cfg.enforce_auth_schemes;
        schemes.is_empty() || c.inner.borrow().ids.iter().any(|id| schemes.contains(&id.scheme))
    }

    /// A step of SASL (DIGEST-MD5), answered at once as ZooKeeper does:
    /// the server's token; once authenticated, the connection holds the
    /// `sasl` identity (and `super`, for `superUser`). A failed step is
    /// answered with AuthFailed (or, when SASL is required, with
    /// SessionClosedRequireSaslAuth) and the connection closes. With no
    /// JAAS file configured the token is null.
    fn sasl_step(&mut self, c: &Rc<Conn>, xid: i32, req: &Request, start: Instant) -> Action {
        let Request::Sasl { token } = req else { unreachable!("sasl decodes to Request::Sasl") };
        self.mark_dirty(c.id);
        let Some(users) = self.cfg.sasl_users.clone() else {
            c.inner.borrow_mut().reply(xid, 0, &Ok(Response::SaslToken(None)), OpCode::Sasl, start);
            return Action::None;
        };
        let mut inner = c.inner.borrow_mut();
        match inner.sasl.step(token, &users, sasl_nonce) {
            Ok(Step::Challenge(challenge)) => {
                inner.reply(xid, 0, &Ok(Response::SaslToken(Some(challenge.into()))), OpCode::Sasl, start);
                Action::None
            }
            Ok(Step::Authenticated { token, authorization_id }) => {
                tracing::info!(peer = %c.peer, session = %format_args!("0x{:x}", inner.session_id), "authenticated with SASL as {authorization_id}");
                let mut ids = inner.ids.to_vec();
                if self.cfg.sasl_super_user.as_deref() == Some(authorization_id.as_str()) {
                    ids.push(Id::new("super", ""));
                }
                ids.push(Id::new("sasl", &authorization_id));
                inner.ids = Arc::from(ids);
                inner.reply(xid, 0, &Ok(Response::SaslToken(Some(token.into()))), OpCode::Sasl, start);
                Action::None
            }
            Err(why) => {
                crate::warn_limited!(peer = %c.peer, "SASL authentication failed ({why}), closing");
                self.counters.auth_failed += 1;
                let required = self.cfg.enforce_auth_schemes.iter().any(|s| s == "sasl");
                let code = if required { ErrorCode::SessionClosedRequireSaslAuth } else { ErrorCode::AuthFailed };
                inner.reply(xid, 0, &Err(code), OpCode::Sasl, start);
                Action::Close
            }
        }
    }

    /// addAuth: answered at once (outside the request order), zxid 0.
    fn authenticate(&mut self, c: &Rc<Conn>, xid: i32, req: &Request, start: Instant) -> Action {
        let Request::Auth { scheme, auth } = req else { unreachable!("auth decodes to Request::Auth") };
        let outcome = acl::authenticate(scheme, auth, &c.peer.ip().to_string(), self.cfg.super_digest.as_deref());
        let mut inner = c.inner.borrow_mut();
        self.mark_dirty(c.id);
        match outcome {
            AuthOutcome::Added(new_ids) => {
                let mut ids = inner.ids.to_vec();
                for id in new_ids {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                inner.ids = Arc::from(ids);
                inner.reply(xid, 0, &Ok(Response::Empty), OpCode::Auth, start);
                Action::None
            }
            AuthOutcome::Failed => {
                crate::warn_limited!(peer = %c.peer, "authentication failed for scheme {scheme:?}, closing");
                self.counters.auth_failed += 1;
                inner.reply(xid, 0, &Err(ErrorCode::AuthFailed), OpCode::Auth, start);
                Action::Close
            }
        }
    }
}

/// A fresh DIGEST-MD5 nonce: 16 random bytes, base64.
fn sasl_nonce() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom fills the buffer it is given, of the length given.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    assert_eq!(filled, bytes.len() as isize, "the kernel gives 16 random bytes");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
