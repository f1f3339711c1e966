//! The clients' side of the simulated world: connecting, sending requests
//! (pipelined), and hearing replies and watch events, which the history checks.

use super::*;

impl World {
    /// Clients connect (again), send requests while they have room in
    /// their pipeline, and give up on servers that do not answer.
    pub(super) fn drive_clients(&mut self) -> Result<(), String> {
        for i in 0..self.clients.len() {
            let c = &self.clients[i];
            let waiting = c.connecting || !c.in_flight.is_empty();
            let stuck = waiting && self.now - c.since > CLIENT_PATIENCE_MS;
            // The network between a client and its server fails now and then.
            let lost = self.opts.faults && c.conn.is_some() && self.rng.chance(CONNECTION_LOSS_PER_MILLION);
            let reconnect = c.conn.is_none() || stuck || lost || self.servers[&c.server].seq.is_none();
            if lost {
                self.note(&format!("{} client {i} loses its connection", self.now));
            }
            if reconnect {
                self.reconnect(i);
                continue;
            }
            self.deliver_frames(i);
            if self.clients[i].ready() && self.clients[i].in_flight.len() < PIPELINE_DEPTH {
                self.send_request(i);
            }
        }
        Ok(())
    }

    /// Client `i` hangs up (if connected) and connects to another server,
    /// presenting its session and the newest zxid it has seen.
    fn reconnect(&mut self, i: usize) {
        self.hang_up(i);
        let n = self.servers.len() as u64;
        let c = &mut self.clients[i];
        c.server = 1 + (c.server + self.rng.range(0, n - 1)) % n;
        let s = self.servers.get_mut(&c.server).unwrap();
        if s.seq.is_none() {
            // Connection refused: it tries another server next time.
            return;
        }
        let shard = self.rng.range(0, SHARDS as u64) as usize;
        c.conn = Some((shard, s.shards[shard].add_conn(std::net::SocketAddr::from(([127, 0, 0, 1], 10_000 + c.id as u16)))));
        let frame = c.connect_frame(self.history.seen(c.id), self.now);
        self.client_sends(i, frame);
    }

    /// Client `i` closes its connection (its session lives on): the
    /// server forgets it, and requests in flight have no answer to come.
    fn hang_up(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if let Some((shard, conn)) = c.conn.take()
            && let Some(shard) = self.servers.get_mut(&c.server).unwrap().shards.get_mut(shard)
            && shard.conns.get(&conn.id).is_some_and(|known| Rc::ptr_eq(known, &conn))
        {
            shard.remove_conn(&conn);
        }
        c.disconnected();
        self.history.disconnected(c.id, self.now);
    }

    /// Client `i` sends a frame to its server.
    fn client_sends(&mut self, i: usize, frame: Bytes) {
        self.clients[i].unsent.push_back(frame);
        self.deliver_frames(i);
    }

    /// The frames client `i` sent reach its server's shard, unless the
    /// process is paused (its socket keeps them until it runs again). The
    /// shard does with each what a connection's reader does.
    fn deliver_frames(&mut self, i: usize) {
        let server = self.clients[i].server;
        if !self.up(server) {
            return;
        }
        let clock = self.clock(server);
        let c = &mut self.clients[i];
        let Some((shard, conn)) = c.conn.clone() else { return };
        let s = self.servers.get_mut(&server).unwrap();
        while let Some(frame) = c.unsent.pop_front() {
            if conn.is_closing() {
                break;
            }
            match s.shards[shard].on_frame(&conn, frame) {
                Action::Send(msg) => s.seq.as_mut().unwrap().on_message(msg, clock),
                Action::Close => conn.close(),
                Action::None => {}
            }
        }
    }

    /// Client `i` sends its next request: now and then it closes its
    /// session, or syncs and reads behind the sync; otherwise it reads a
    /// shared key (perhaps setting a watch), writes one, or creates a path
    /// of its own; when idle for a while, it pings.
    fn send_request(&mut self, i: usize) {
        let now = self.now;
        let room = PIPELINE_DEPTH - self.clients[i].in_flight.len();
        let client = self.clients[i].id;
        let idle = self.clients[i].in_flight.is_empty() && now - self.clients[i].last_sent >= PING_EVERY_MS;
        let frames = if self.clients[i].in_flight.is_empty() && self.rng.chance(CLOSE_PER_MILLION) {
            // Its ephemerals must go with it everywhere.
            let c = &mut self.clients[i];
            c.closing = true;
            self.closed_by_client.insert(c.session.expect("a ready client has a session"));
            vec![c.request(OpCode::CloseSession, &Request::CloseSession, |xid| Sent::Close { xid }, now)]
        } else if room >= 2 && self.rng.chance(SYNC_PER_MILLION) {
            let key = history::key(self.rng.range(0, history::KEYS as u64) as usize);
            let c = &mut self.clients[i];
            let sync = c.request(OpCode::Sync, &Request::Sync { path: Some("/".into()) }, |xid| Sent::Sync { xid }, now);
            let read = c.request(OpCode::GetData, &Request::GetData { path: key.clone(), watch: false }, |xid| Sent::Read { xid, key, watch: false }, now);
            let Some(Sent::Read { xid, .. }) = c.in_flight.back() else { unreachable!("the read was just sent") };
            self.history.sync_sent(client, *xid, now);
            vec![sync, read]
        } else if idle && self.rng.chance(500_000) {
            vec![self.clients[i].request(OpCode::Ping, &Request::Ping, |_| Sent::Ping, now)]
        } else {
            let key = history::key(self.rng.range(0, history::KEYS as u64) as usize);
            match self.rng.range(0, 20) {
                0..10 => {
                    let watch = self.rng.chance(300_000);
                    let req = Request::GetData { path: key.clone(), watch };
                    vec![self.clients[i].request(OpCode::GetData, &req, |xid| Sent::Read { xid, key, watch }, now)]
                }
                // A shared key, with a value no other write has.
                10..15 => {
                    let c = &mut self.clients[i];
                    let data = Bytes::from(format!("c{}-{}", c.id, c.writes + 1));
                    let create = (!self.history.exists(&key)).then_some(0);
                    let frame = c.write(&key, create, data, now);
                    self.write_sent(i, &key);
                    vec![frame]
                }
                // A path of its own: persistent, which must never be lost, or
                // now and then ephemeral, which must go with its session.
                _ => {
                    let ephemeral = self.rng.chance(250_000);
                    let (prefix, flags) = if ephemeral { ("/e", 1) } else { (SURVIVING_PREFIX, 0) };
                    let c = &mut self.clients[i];
                    let path = format!("{prefix}{}-{}", c.id, c.writes + 1);
                    let frame = c.write(&path, Some(flags), Bytes::from_static(b"v"), now);
                    self.write_sent(i, &path);
                    vec![frame]
                }
            }
        };
        for frame in frames {
            self.client_sends(i, frame);
        }
    }

    /// Tells the history about the write client `i` just sent.
    fn write_sent(&mut self, i: usize, path: &str) {
        let c = &self.clients[i];
        let Some(Sent::Write { xid, .. }) = c.in_flight.back() else { unreachable!("a write was just sent") };
        self.history.write_sent(c.id, *xid, self.now, path);
    }

    /// Every client takes what its server wrote to it; the history checks
    /// each answer and watch event. A connection the server closed is
    /// hung up once read to its end.
    pub(super) fn hear_replies(&mut self) -> Result<(), String> {
        for i in 0..self.clients.len() {
            for reply in self.clients[i].take_replies(self.now)? {
                self.on_reply(i, reply)?;
            }
            if self.clients[i].conn.as_ref().is_some_and(|(_, conn)| conn.is_closing()) {
                self.hang_up(i);
            }
        }
        Ok(())
    }

    fn on_reply(&mut self, i: usize, reply: Reply) -> Result<(), String> {
        let (client, server, now) = (self.clients[i].id, self.clients[i].server, self.now);
        let at = |e: String| format!("at {now} ms: {e}");
        match reply {
            Reply::Connected(Some(session)) => self.note(&format!("{now} client {client} session {session:x} at {server}")),
            // Its session expired: a new one next, on a new connection.
            Reply::Connected(None) => self.clients[i].lost_session(now),
            Reply::Event { path } => self.history.watch_fired(client, now, &path).map_err(at)?,
            Reply::Answer { sent, zxid, err, data } => {
                if zxid > 0 {
                    self.history.reply_seen(client, now, zxid).map_err(at)?;
                }
                match sent {
                    Sent::Ping | Sent::Sync { .. } => {}
                    Sent::Close { .. } => self.clients[i].lost_session(now),
                    Sent::Write { xid, path } => {
                        if err == 0 && path.starts_with(SURVIVING_PREFIX) {
                            self.note(&format!("ack {path}"));
                            self.acknowledged.insert(path);
                        }
                        self.history.write_acked(client, xid, now, zxid).map_err(at)?;
                    }
                    Sent::Read { xid, key, watch } => {
                        let value = match ErrorCode::from_i32(err) {
                            Some(ErrorCode::Ok) => Some(data.map(|d| d.to_vec()).unwrap_or_default()),
                            Some(ErrorCode::NoNode) => None,
                            other => return Err(at(format!("client {client}: a read of {key} failed with {other:?} ({err})"))),
                        };
                        let observed = history::Observed { server, key: &key, value: value.as_deref(), state: zxid };
                        self.history.read(client, xid, now, observed).map_err(at)?;
                        if watch && value.is_some() {
                            self.history.watch_set(client, now, &key, zxid);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
