//! Writes and sessions: where a write goes (prepared here, forwarded to
//! the leader, or held until a leader may prepare), proposing, handshakes
//! (new sessions and re-attaches, checked with the leader), and session
//! touches.

use super::{Handshake, Route, Sequencer};
use crate::core::messages::{ConnectInfo, Entry, Origin, PeerMessage, ToBroadcast};
use crate::core::prep::{self, PrepContext, Prepared};
use crate::core::session;
use crate::core::txn::{Txn, TxnBody, TxnOp};
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::records::Id;
use crate::proto::request::{self, Request};
use raft::StateRole;

/// Writes (and handshakes) a server keeps while no leader may prepare them;
/// more are refused (their connections closed, the clients reconnect).
pub const HELD_MAX: usize = 16_384;

/// Something waiting for a leader that may prepare it.
pub(super) enum Held {
    Shard(ToBroadcast),
    Peer(u64, PeerMessage),
}

impl Sequencer {
    /// Whether this server may prepare writes now: it leads, every entry
    /// from before its term has committed, and it is not handing the
    /// leadership over.
    pub(super) fn may_prepare(&self) -> bool {
        // raft's own state, not the role its last ready reported: a message
        // stepped since may have made it step down.
        let raft = &self.raft.raft;
        raft.state == StateRole::Leader && self.role == StateRole::Leader && self.lead_from.is_none() && raft.lead_transferee.is_none()
    }

    fn route(&self) -> Route {
        if self.may_prepare() {
            Route::Prepare
        } else if self.role != StateRole::Leader && self.leader != 0 {
            Route::Forward(self.leader)
        } else {
            Route::Hold
        }
    }

    /// Keeps something for later; past [`HELD_MAX`], closes the connection instead.
    fn hold(&mut self, item: Held, origin: Option<Origin>) {
        if self.held.len() < HELD_MAX {
            self.held.push_back(item);
        } else if let Some(origin) = origin {
            self.replies.push_back((0, Entry::Evict { origin }));
        }
    }

    /// Hands held writes to whoever may take them now (some may be held again).
    pub(super) fn release_held(&mut self) {
        for item in std::mem::take(&mut self.held) {
            match item {
                Held::Shard(msg) => self.handle_message(msg),
                Held::Peer(from, msg) => self.handle_peer(from, msg),
            }
        }
    }

    /// A client's write, from this server's shards.
    pub(super) fn route_write(&mut self, msg: ToBroadcast) {
        match self.route() {
            Route::Prepare => {
                let ToBroadcast::Write { origin, session_id, cxid, op, req, ids } = msg else { unreachable!("route_write takes writes") };
                self.prepare_write(self.my_id, Some(origin), session_id, cxid, op, &req, &ids);
            }
            Route::Forward(leader) => {
                let ToBroadcast::Write { origin, session_id, cxid, op, req, ids } = msg else { unreachable!("route_write takes writes") };
                self.origins.insert((session_id, cxid), origin);
                let malformed = matches!(req, Request::Malformed);
                let mut frame = bytes::BytesMut::new();
                crate::proto::encode::request(&mut frame, cxid, op, &req);
                let request = frame[4..].to_vec();
                let ids = ids.iter().map(|id| (id.scheme.clone(), id.id.clone())).collect();
                self.out.peers.push((leader, PeerMessage::Forward { server: self.my_id, session_id, cxid, op: op as i32, request, ids, malformed }));
            }
            Route::Hold => {
                let origin = match &msg {
                    ToBroadcast::Write { origin, .. } => Some(*origin),
                    _ => None,
                };
                self.hold(Held::Shard(msg), origin);
            }
        }
    }

    /// A write another server forwarded: prepared here if this server may.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forwarded(
        &mut self,
        from: u64,
        server: u64,
        session_id: i64,
        cxid: i32,
        op: i32,
        request: &[u8],
        ids: Vec<(String, String)>,
        malformed: bool,
    ) {
        if !self.may_prepare() {
            return self.hold_or_pass_on(from, PeerMessage::Forward { server, session_id, cxid, op, request: request.to_vec(), ids, malformed });
        }
        let Some(opcode) = OpCode::from_i32(op) else {
            return tracing::warn!("server {from} forwarded an unknown opcode {op}");
        };
        let req = if malformed {
            Request::Malformed
        } else {
            match request::decode(bytes::Bytes::copy_from_slice(request)) {
                Ok((header, Ok((decoded_op, req)))) if header.xid == cxid && decoded_op == opcode => req,
                _ => return tracing::warn!("server {from} forwarded a write that does not decode (session 0x{session_id:x}, cxid {cxid})"),
            }
        };
        let ids: Vec<Id> = ids.into_iter().map(|(scheme, id)| Id::new(&scheme, &id)).collect();
        self.prepare_write(server, None, session_id, cxid, opcode, &req, &ids);
    }

    /// Prepares a write of a client of server `from` and proposes it.
    #[allow(clippy::too_many_arguments)]
    fn prepare_write(&mut self, from: u64, origin: Option<Origin>, session_id: i64, cxid: i32, op: OpCode, req: &Request, ids: &[Id]) {
        debug_assert!(self.may_prepare(), "only a leader that may prepare does");
        if !self.sessions.touch(session_id, self.now.mono_ms) {
            // ZooKeeper drops requests of unknown or closing sessions silently.
            return;
        }
        let moved = self.session_servers.get(&session_id).is_some_and(|server| *server != from);
        let prepared = if op == OpCode::CloseSession {
            self.sessions.set_closing(session_id);
            prep::prep_close_session(&self.tree, &self.outstanding, session_id)
        } else if moved {
            // The session is attached to another server now (ZooKeeper's SessionMoved).
            Prepared { body: TxnBody::Single(TxnOp::Error { code: ErrorCode::SessionMoved.code() }), changes: Default::default() }
        } else {
            self.session_servers.insert(session_id, from);
            let ctx = PrepContext {
                session_id,
                ids,
                extended_types: self.cfg.extended_types,
                enforce_quota: self.cfg.enforce_quota,
                schemes: self.cfg.acl_schemes(),
            };
            prep::prep(&self.tree, &self.outstanding, op, req, &ctx)
        };
        self.propose(session_id, cxid, prepared, origin);
    }

    /// Stamps a prepared request with the next zxid and the time, records
    /// what it changed as outstanding, and proposes it to raft.
    pub(super) fn propose(&mut self, session_id: i64, cxid: i32, prepared: Prepared, origin: Option<Origin>) {
        assert!(self.may_prepare(), "only a leader that may prepare proposes");
        self.stats.proposals += 1;
        let zxid = self.prepared.next();
        let term = self.raft.raft.term;
        debug_assert_eq!(zxid.epoch() as u64, term, "the zxid epoch is the leader's term");
        let txn = Txn { zxid, time_ms: self.now.wall_ms, session_id, cxid, body: prepared.body };
        let bytes = txn.to_bytes();
        self.leading.as_mut().expect("a leader that prepares has its leadership recorded").proposed(bytes.len());
        if let Err(e) = self.raft.propose(Vec::new(), bytes) {
            // raft dropped it (it stepped down within this call): the client
            // reconnects and retries, as after any leader change.
            tracing::warn!("raft dropped a proposal of session 0x{session_id:x} ({e}); closing its connection");
            if let Some(origin) = origin {
                self.replies.push_back((0, Entry::Evict { origin }));
            }
            return;
        }
        if matches!(txn.body, TxnBody::CloseSession) {
            self.sessions.remove(session_id);
            self.owners.remove(&session_id);
            self.session_servers.remove(&session_id);
        }
        let index = self.raft.raft.raft_log.last_index();
        self.outstanding.push(zxid, prepared.changes);
        if let Some(origin) = origin {
            self.origins.insert((session_id, cxid), origin);
        }
        self.proposed.push_back((index, term, txn));
        self.prepared = zxid;
    }

    /// A handshake: a new session (a createSession transaction through the
    /// leader) or a re-attach (checked with the leader).
    pub(super) fn connect(&mut self, origin: Origin, info: ConnectInfo) {
        let applied = self.tree.last_zxid();
        if info.last_zxid_seen > applied.raw() {
            crate::warn_limited!("refusing session request: client has seen zxid 0x{:x}, our last zxid is {applied}", info.last_zxid_seen);
            self.replies.push_back((self.reply_after(), Entry::Refused { origin }));
            return;
        }
        let route = self.route();
        if matches!(route, Route::Hold) {
            return self.hold(Held::Shard(ToBroadcast::Connect { origin, info }), Some(origin));
        }
        let timeout_ms = info.timeout_ms.max(self.cfg.min_session_timeout_ms).min(self.cfg.max_session_timeout_ms);
        if info.session_id == 0 {
            let id = self.sessions.next_session_id();
            self.owners.insert(id, origin);
            self.origins.insert((id, 0), origin);
            match route {
                Route::Forward(leader) => {
                    let msg = PeerMessage::CreateSession { server: self.my_id, session_id: id, timeout_ms };
                    self.handshakes.insert((origin.shard, origin.conn), Handshake::new(msg.clone(), self.now.mono_ms));
                    self.out.peers.push((leader, msg));
                }
                _ => self.create_session(self.my_id, self.my_id, id, timeout_ms),
            }
            return;
        }
        let id = info.session_id;
        // The session's current connection here is dropped first, even if the password is wrong.
        if let Some(old) = self.owners.remove(&id)
            && old != origin
        {
            self.replies.push_back((self.reply_after(), Entry::Evict { origin: old }));
        }
        if info.passwd.as_ref() != session::password(id) {
            self.replies.push_back((self.reply_after(), Entry::Rejected { origin }));
            return;
        }
        match route {
            Route::Forward(leader) => {
                let msg = PeerMessage::Revalidate { server: self.my_id, session_id: id, timeout_ms, shard: origin.shard as u32, conn: origin.conn };
                self.handshakes.insert((origin.shard, origin.conn), Handshake::new(msg.clone(), self.now.mono_ms));
                self.out.peers.push((leader, msg));
            }
            _ => {
                let alive = self.session_alive(self.my_id, id);
                self.revalidated(id, timeout_ms, origin, alive);
            }
        }
    }

    /// As leader: opens a session a client of `server` asked for (`from`
    /// sent it: `server`, or a stopping leader passing it on).
    pub(super) fn create_session(&mut self, from: u64, server: u64, session_id: i64, timeout_ms: i32) {
        if !self.may_prepare() {
            return self.hold_or_pass_on(from, PeerMessage::CreateSession { server, session_id, timeout_ms });
        }
        if self.sessions.timeout_of(session_id).is_some() || self.tree.sessions().contains_key(&session_id) {
            // Sent again after a leader change: it is already open, or on its way.
            return;
        }
        self.sessions.add(session_id, timeout_ms, self.now.mono_ms);
        self.session_servers.insert(session_id, server);
        let created = Prepared { body: TxnBody::CreateSession { timeout_ms }, changes: Default::default() };
        self.propose(session_id, 0, created, None);
    }

    /// As leader: whether a session is alive (touching it); it is now
    /// attached to server `from`.
    fn session_alive(&mut self, from: u64, session_id: i64) -> bool {
        let alive = self.sessions.touch(session_id, self.now.mono_ms);
        if alive {
            self.session_servers.insert(session_id, from);
        }
        alive
    }

    /// As leader: a client of `server` re-attached; answer whether the session lives.
    pub(super) fn revalidate(&mut self, from: u64, server: u64, session_id: i64, timeout_ms: i32, shard: u32, conn: u64) {
        if !self.may_prepare() {
            return self.hold_or_pass_on(from, PeerMessage::Revalidate { server, session_id, timeout_ms, shard, conn });
        }
        let alive = self.session_alive(server, session_id);
        let answer = PeerMessage::Revalidated { session_id, timeout_ms, shard, conn, alive };
        if server == self.my_id {
            // Asked before this server led (the handshake went to the old
            // leader, then came back here): there is no link to itself.
            self.handle_peer(self.my_id, answer);
        } else {
            self.out.peers.push((server, answer));
        }
    }

    /// A message for the leader that this server may not act on now: a
    /// leader waiting to prepare holds it; a server that handed its
    /// leadership over passes it on (holding it until the new leader is
    /// known); any other drops it (its sender closes the client's
    /// connection when it learns of the new leader).
    fn hold_or_pass_on(&mut self, from: u64, msg: PeerMessage) {
        if self.role == StateRole::Leader || (self.handed_over && self.leader == 0) {
            self.hold(Held::Peer(from, msg), None);
        } else if self.handed_over {
            self.out.peers.push((self.leader, msg));
        }
    }

    /// The leader said whether a re-attached session lives.
    pub(super) fn revalidated(&mut self, session_id: i64, timeout_ms: i32, origin: Origin, alive: bool) {
        let entry = if alive {
            self.owners.insert(session_id, origin);
            Entry::Attached { origin, session_id, timeout_ms }
        } else {
            Entry::Rejected { origin }
        };
        self.replies.push_back((self.reply_after(), entry));
    }

    /// Client activity: the leader's own sessions, or reported to the leader.
    pub(super) fn touch(&mut self, ids: Vec<i64>) {
        if self.role == StateRole::Leader {
            for id in ids {
                self.sessions.touch(id, self.now.mono_ms);
            }
        } else if self.leader != 0 {
            self.out.peers.push((self.leader, PeerMessage::Touch(ids)));
        }
    }

    /// This server may prepare from now on: every session is given a fresh
    /// timeout (as a new ZooKeeper leader does), and held writes go ahead.
    pub(super) fn become_ready_leader(&mut self) {
        tracing::info!(
            "server {} may prepare writes in term {} (every earlier entry committed, {} sessions re-armed)",
            self.my_id,
            self.raft.raft.term,
            self.tree.sessions().len()
        );
        #[allow(unused_mut)]
        let mut touched_at = self.now.mono_ms;
        #[cfg(test)]
        if crate::core::planted::planted(crate::core::planted::Bug::EarlyExpiryAfterLeaderChange) {
            touched_at -= 3_600_000;
        }
        self.sessions.rearm(self.tree.sessions().iter().map(|(&id, &timeout)| (id, timeout)), touched_at);
        self.session_servers.clear();
        self.release_held();
    }
}
