//! A shard in read-only mode (`readonlymode.enabled`, no leader for a
//! while): ZooKeeper's ReadOnlyZooKeeperServer. Clients that connected with
//! canBeReadOnly read this server's last committed state; every other
//! client is refused. Writes and syncs are answered NotReadOnly.
//!
//! Sessions here are local to the connection: no leader can record one.
//! A client that re-attaches with a session the committed state knows, and
//! its password, keeps that session's id (its ephemerals stay, and it
//! re-attaches to it under a leader later). A new session gets an id from
//! this shard and an unpredictable password, so no server, read-only or
//! not, accepts it after the connection ends; clients open a new session
//! under a leader (the Java client sends session id 0 until it has seen a
//! read-write server).

use super::ShardState;
use super::conn::{Conn, Pending, Phase};
use super::requests::Action;
use crate::core::session;
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::frame::{ConnectRequest, ConnectResponse};
use crate::proto::request::Request;
use crate::proto::response::Response;
use crate::runtime::wall_ms;
use std::rc::Rc;
use std::time::Instant;

/// Whether a read-only server answers this request with NotReadOnly
/// (ZooKeeper's `ReadOnlyRequestProcessor`: every write, and sync).
pub fn refused(op: OpCode, req: &Request) -> bool {
    op == OpCode::Sync || (req.is_write() && op != OpCode::CloseSession)
}

/// 16 bytes no one can derive from the session id.
fn unpredictable_password() -> [u8; session::PASSWORD_LEN] {
    let state = ahash::RandomState::new();
    let mut out = [0u8; session::PASSWORD_LEN];
    out[..8].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
    out[8..].copy_from_slice(&state.hash_one(2u8).to_le_bytes());
    out
}

impl ShardState {
    /// A handshake while read-only: refused unless the client accepts a
    /// read-only server; a known session (right password) keeps its id.
    pub fn connect_read_only(&mut self, c: &Rc<Conn>, req: &ConnectRequest) -> Action {
        if !req.read_only {
            crate::warn_limited!(peer = %c.peer, "refusing a client that does not accept a read-only server (canBeReadOnly unset)");
            return Action::Close;
        }
        let timeout_ms = req.timeout_ms.clamp(self.cfg.min_session_timeout_ms, self.cfg.max_session_timeout_ms);
        let (session_id, passwd) = if req.session_id == 0 {
            self.read_only_sessions += 1;
            let id = session::first_session_id(self.cfg.my_id, wall_ms()) + ((self.id as i64) << 12) + self.read_only_sessions;
            (id, unpredictable_password())
        } else if self.tree.sessions().contains_key(&req.session_id) && req.passwd[..] == session::password(req.session_id)[..] {
            (req.session_id, session::password(req.session_id))
        } else {
            let mut inner = c.inner.borrow_mut();
            inner.read_only_byte = req.sent_read_only;
            inner.connect_response(&ConnectResponse::REJECTED);
            drop(inner);
            self.mark_dirty(c.id);
            return Action::Close;
        };
        {
            let mut inner = c.inner.borrow_mut();
            debug_assert_eq!(inner.phase, Phase::New, "one handshake per connection");
            inner.read_only_byte = req.sent_read_only;
            inner.phase = Phase::Active;
            inner.session_id = session_id;
            inner.timeout_ms = timeout_ms;
            inner.connect_response(&ConnectResponse { timeout_ms, session_id, passwd, read_only: true });
        }
        self.mark_dirty(c.id);
        Action::None
    }

    /// A request a read-only server does not carry out: NotReadOnly, or for
    /// closeSession an empty reply and the connection closed (the session
    /// was never the ensemble's to close here).
    pub fn refuse_read_only(&mut self, c: &Rc<Conn>, xid: i32, op: OpCode, start: Instant) -> Action {
        if op == OpCode::CloseSession {
            self.answer_in_order(c, Pending::Ready { xid, op, result: Ok(Response::Empty), start, zxid: None });
            return Action::Close;
        }
        self.answer_in_order(c, Pending::Ready { xid, op, result: Err(ErrorCode::NotReadOnly), start, zxid: None })
    }
}
