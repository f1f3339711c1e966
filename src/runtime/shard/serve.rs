//! The shard's tasks: accept loop, per-connection reader and writer, the
//! committed-stream consumer and the touch reporter.

use super::ShardState;
use super::conn::{Conn, Phase};
use super::requests::Action;
use crate::config::Config;
use crate::core::messages::{AdminQuery, Origin, ServeMode, ShardId, ToBroadcast, ToShard};
use crate::core::tree::DataTree;
use crate::proto::frame::{self, FrameCheck};
use crate::runtime::input::Input;
use crate::runtime::limits::{self, ConnLimits};
use crate::runtime::metrics;
use crate::runtime::stream::SharedStream;
use crate::runtime::{admin, fourlw, http, tls};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::shared_channel::{ConnectedSender, SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use glommio::spawn_local;
use std::cell::RefCell;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

type Shared = Rc<RefCell<ShardState>>;
type Sender = Rc<ConnectedSender<ToBroadcast>>;

/// What a shard core starts with.
pub struct ShardSetup {
    pub id: ShardId,
    pub cfg: Arc<Config>,
    /// The recovered tree, this shard's replica from now on.
    pub tree: DataTree,
    /// The broadcast core's released zxid (the cross-shard read barrier).
    pub released: Arc<AtomicI64>,
    /// A listening socket on the client port (SO_REUSEPORT), unless only TLS clients are served.
    pub listener: Option<OwnedFd>,
    /// A listening socket on the secure client port, and its TLS configuration.
    pub secure_listener: Option<(OwnedFd, Arc<rustls::ServerConfig>)>,
    /// The Prometheus endpoint's listening socket (shard 0, when configured).
    pub metrics_listener: Option<OwnedFd>,
    /// The AdminServer's listening socket (shard 0, when configured).
    pub admin_listener: Option<OwnedFd>,
    pub to_broadcast: SharedSender<ToBroadcast>,
    pub from_broadcast: SharedReceiver<ToShard>,
    pub conn_limits: Arc<ConnLimits>,
}

/// Runs a shard until its channels close, accepting on its client-port
/// sockets (each shares its port with the other shards' through SO_REUSEPORT).
pub async fn run_shard(setup: ShardSetup) {
    let ShardSetup { id, cfg, tree, released, listener, secure_listener, metrics_listener, admin_listener, to_broadcast, from_broadcast, conn_limits } = setup;
    let tx: Sender = Rc::new(to_broadcast.connect().await);
    let rx = from_broadcast.connect().await;
    let state: Shared = Rc::new(RefCell::new(ShardState::new(id, cfg.clone(), tree, released)));
    spawn_local(consume(state.clone(), rx, tx.clone())).detach();
    spawn_local(report_touches(state.clone(), tx.clone(), cfg.tick_ms)).detach();
    for (fd, endpoint) in [(metrics_listener, Endpoint::Metrics), (admin_listener, Endpoint::Admin)] {
        if let Some(fd) = fd {
            // SAFETY: the descriptor is a listening TCP socket handed over whole.
            let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
            spawn_local(serve_http(listener, endpoint, state.clone(), tx.clone())).detach();
        }
    }
    let throttle = Rc::new(RefCell::new(limits::ConnectionThrottle::new(&cfg.throttle, cfg.shards, std::time::Instant::now())));
    let accepting = Accepting { state, tx, conn_limits, throttle };
    let secure = secure_listener.map(|(fd, config)| {
        // SAFETY: the descriptor is a listening TCP socket handed over whole.
        let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
        let reloading = Rc::new(RefCell::new(tls::Reloading::new(&cfg.ssl, config, tls::server_config)));
        spawn_local(tls::follow_certificates(format!("shard {id}"), reloading.clone())).detach();
        spawn_local(accepting.clone().accept_loop(listener, Some(reloading)))
    });
    match listener {
        // SAFETY: the descriptor is a listening TCP socket handed over whole.
        Some(fd) => accepting.accept_loop(unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) }, None).await,
        None => secure.expect("a shard serves a plain port, a secure one, or both").await,
    }
}

/// What a client-port accept loop shares with the shard's other tasks.
#[derive(Clone)]
struct Accepting {
    state: Shared,
    tx: Sender,
    conn_limits: Arc<ConnLimits>,
    /// The connection throttle, shared by the plain and the secure port.
    throttle: Rc<RefCell<limits::ConnectionThrottle>>,
}

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Accepting {
    /// Accepts clients on `listener` (through TLS with `tls`) and serves each
    /// on tasks of its own, after the connection throttle and maxClientCnxns.
    async fn accept_loop(self, listener: TcpListener, tls: Option<Rc<RefCell<tls::Reloading<Arc<rustls::ServerConfig>>>>>) {
        let (id, cfg) = {
            let s = self.state.borrow();
            (s.id, s.cfg.clone())
        };
        loop {
            let stream = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("shard {id}: accept failed: {e}");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            let now = std::time::Instant::now();
            let admitted = self.throttle.borrow_mut().admit(now);
            if !admitted {
                self.state.borrow_mut().counters.connections_refused += 1;
                if let Some(n) = self.throttle.borrow_mut().report(now) {
                    tracing::warn!("shard {id}: connection throttle: refused {n} new connections in the last second (connection_throttle_tokens)");
                }
                continue;
            }
            if !self.conn_limits.acquire(peer.ip()) {
                self.state.borrow_mut().counters.connections_refused += 1;
                crate::warn_limited!("too many connections from {} (maxClientCnxns={}), refusing", peer.ip(), cfg.max_client_cnxns);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            let tls = tls.as_ref().map(|t| futures_rustls::TlsAcceptor::from(t.borrow().current()));
            spawn_local(async move {
                let (stream, subject) = match tls {
                    None => (SharedStream::new(stream), None),
                    Some(acceptor) => match handshake(acceptor, stream).await {
                        Ok(done) => done,
                        Err(why) => {
                            crate::warn_limited!(peer = %peer, "TLS handshake failed: {why}");
                            this.conn_limits.release(peer.ip());
                            return;
                        }
                    },
                };
                this.serve(stream, peer, subject).await;
            })
            .detach();
        }
    }

    /// Serves one client until its connection closes.
    async fn serve(&self, stream: SharedStream, peer: std::net::SocketAddr, x509_subject: Option<String>) {
        let conn = {
            let mut s = self.state.borrow_mut();
            s.counters.connections_accepted += 1;
            s.add_conn(peer)
        };
        if let Some(subject) = x509_subject {
            // The x509 scheme's identity, as ZooKeeper's X509AuthenticationProvider gives it.
            let mut inner = conn.inner.borrow_mut();
            let mut ids = inner.ids.to_vec();
            ids.push(crate::proto::records::Id::new("x509", &subject));
            inner.ids = Arc::from(ids);
        }
        spawn_local(write_loop(conn.clone(), stream.clone())).detach();
        read_loop(&self.state, &conn, stream, &self.tx).await;
        conn.close();
        self.state.borrow_mut().remove_conn(&conn);
        self.conn_limits.release(peer.ip());
    }
}

/// Completes a TLS handshake (within [`TLS_HANDSHAKE_TIMEOUT`]): the stream,
/// and the subject of the client's certificate if it sent one.
async fn handshake(acceptor: futures_rustls::TlsAcceptor, stream: glommio::net::TcpStream) -> Result<(SharedStream, Option<String>), String> {
    let accepted = futures_lite::future::or(async { Some(acceptor.accept(stream).await) }, async {
        glommio::timer::sleep(TLS_HANDSHAKE_TIMEOUT).await;
        None
    })
    .await;
    let tls = match accepted {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err(format!("not done within {} s", TLS_HANDSHAKE_TIMEOUT.as_secs())),
    };
    let subject = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).and_then(crate::runtime::tls::x509_subject);
    Ok((SharedStream::tls(tls), subject))
}

/// Reads frames until EOF, an error or a close, handing each to the shard.
async fn read_loop(state: &Shared, conn: &Rc<Conn>, mut stream: SharedStream, tx: &Sender) {
    let max_frame = state.borrow().cfg.max_frame_bytes;
    let mut input = Input::new(limits::READ_CHUNK_BYTES);
    loop {
        loop {
            let (phase, queued) = {
                let inner = conn.inner.borrow();
                (inner.phase, inner.pending.len())
            };
            match phase {
                Phase::Closing => return,
                // Stopping: nothing more is read; the connection closes once answered.
                Phase::Active if state.borrow().serve == ServeMode::Draining => {
                    if queued == 0 {
                        return;
                    }
                    conn.reader_wake.wait().await;
                    continue;
                }
                Phase::Connecting | Phase::FourLetter(_) | Phase::Admin(_) => {
                    conn.reader_wake.wait().await;
                    continue;
                }
                _ if queued >= limits::OUTSTANDING_PER_CONN_MAX => {
                    conn.reader_wake.wait().await;
                    continue;
                }
                // The shard's share of globalOutstandingLimit is in flight.
                Phase::Active if state.borrow().budget.spent() => {
                    state.borrow_mut().budget.wait(conn.id);
                    conn.reader_wake.wait().await;
                    continue;
                }
                Phase::New if input.filled().len() >= 4 => {
                    if let Some(word) = fourlw::parse(&input.filled()[..4]) {
                        // stmk carries the new mask: 8 more bytes.
                        let mask = input.filled().get(4..12).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")));
                        if word == fourlw::SET_TRACE_MASK && mask.is_none() {
                            break;
                        }
                        start_four_letter(state, conn, word, mask, tx).await;
                        continue;
                    }
                }
                _ => {}
            }
            let action = match frame::check(input.filled(), max_frame) {
                FrameCheck::Incomplete => break,
                FrameCheck::TooLarge(len) => {
                    crate::warn_limited!(peer = %conn.peer, "frame length {len} outside 0..={max_frame} (jute.maxbuffer), closing");
                    return;
                }
                FrameCheck::Ready(len) => {
                    input.consume(4);
                    let body = input.take(len);
                    let mut s = state.borrow_mut();
                    let action = s.on_frame(conn, body);
                    s.flush();
                    action
                }
            };
            match action {
                Action::None => {}
                Action::Close => return,
                Action::Send(msg) => {
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
        }
        match stream.read(input.spare()).await {
            Ok(0) | Err(_) => return,
            Ok(n) => input.fill(n),
        }
    }
}

/// Answers a four-letter word: at once when it needs no other core, else by
/// asking the broadcast core for a report (the consumer writes the answer).
async fn start_four_letter(state: &Shared, conn: &Rc<Conn>, word: &'static str, mask: Option<i64>, tx: &Sender) {
    let query = {
        let s = state.borrow();
        let mut inner = conn.inner.borrow_mut();
        if !s.cfg.four_letter_words.allows(word) && word != "srvr" {
            inner.out.extend_from_slice(format!("{word} is not executed because it is not in the whitelist.\n").as_bytes());
            None
        } else if let Some(text) = fourlw::immediate(word, s.serve) {
            inner.out.extend_from_slice(text.as_bytes());
            None
        } else if let Some(text) = fourlw::trace_mask(word, mask) {
            inner.out.extend_from_slice(text.as_bytes());
            None
        } else if s.serve == ServeMode::Closed {
            inner.out.extend_from_slice(fourlw::NOT_SERVING.as_bytes());
            None
        } else {
            inner.phase = Phase::FourLetter(word);
            Some(fourlw::query_for(word))
        }
    };
    match query {
        None => conn.close(),
        Some(query) => {
            let origin = Origin { shard: state.borrow().id, conn: conn.id };
            if tx.send(ToBroadcast::Admin { origin, query }).await.is_err() {
                conn.close();
            }
        }
    }
}

/// Writes queued output until the connection closes.
async fn write_loop(conn: Rc<Conn>, mut stream: SharedStream) {
    loop {
        let chunk = {
            let mut inner = conn.inner.borrow_mut();
            if inner.out.len() > limits::OUTPUT_PER_CONN_MAX_BYTES {
                tracing::warn!(peer = %conn.peer, "more than {} bytes of unread output, closing", limits::OUTPUT_PER_CONN_MAX_BYTES);
                inner.out.clear();
                inner.phase = Phase::Closing;
            }
            (!inner.out.is_empty()).then(|| inner.out.split().freeze())
        };
        match chunk {
            Some(bytes) => {
                // (A TLS session holds records back until flushed.)
                if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
                    break;
                }
            }
            None if conn.is_closing() => break,
            None => conn.writer_wake.wait().await,
        }
    }
    // A TLS session says goodbye (close_notify) before the socket closes.
    let _ = futures_lite::future::or(async { stream.close().await.ok() }, async {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        None
    })
    .await;
    stream.shutdown();
    conn.close();
}

/// Applies the committed stream and answers admin requests. Never waits on
/// the broadcast core (sends go through spawned tasks).
async fn consume(state: Shared, rx: glommio::channels::shared_channel::ConnectedReceiver<ToShard>, tx: Sender) {
    while let Some(msg) = rx.recv().await {
        match msg {
            ToShard::Batch(entries) => {
                let mut s = state.borrow_mut();
                for entry in entries.iter() {
                    s.on_entry(entry);
                }
                s.run_waiting_reads();
                s.flush();
            }
            ToShard::AdminCollect { token, query } => {
                let part = state.borrow_mut().report(query);
                let tx = tx.clone();
                spawn_local(async move {
                    let _ = tx.send(ToBroadcast::AdminPart { token, part: Box::new(part) }).await;
                })
                .detach();
            }
            ToShard::Serving(mode) => {
                let mut s = state.borrow_mut();
                s.set_serve_mode(mode);
                s.flush();
            }
            ToShard::AdminReply { conn, report } => {
                let s = state.borrow();
                if let Some(c) = s.conns.get(&conn) {
                    let phase = c.inner.borrow().phase;
                    let text = match phase {
                        Phase::FourLetter(fourlw::METRICS) => metrics::response(&report, &c.inner.borrow().metrics_names),
                        Phase::FourLetter(word) => fourlw::render(word, &report, &s.cfg, c.peer),
                        Phase::Admin(cmd) => admin::render(cmd, &report, &s.cfg),
                        _ => continue,
                    };
                    c.inner.borrow_mut().out.extend_from_slice(text.as_bytes());
                    c.close();
                }
            }
        }
    }
}

/// An HTTP endpoint shard 0 serves beside the client port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Prometheus (`metricsProvider.*`).
    Metrics,
    /// The AdminServer (`admin.*`).
    Admin,
}

impl Endpoint {
    /// What a GET of `path` comes to: a report to gather (and how to
    /// render it), or the whole response at once.
    fn route(self, state: &ShardState, path: &str, query: &str) -> Result<(Phase, AdminQuery), String> {
        match self {
            Endpoint::Metrics if path == metrics::PATH => Ok((Phase::FourLetter(fourlw::METRICS), AdminQuery::Report)),
            Endpoint::Metrics => Err(http::error("404 Not Found")),
            Endpoint::Admin => {
                let admin_cfg = state.cfg.admin.as_ref().expect("the AdminServer runs only when configured");
                match admin::route(admin_cfg, path, query, state.serve != ServeMode::Closed) {
                    admin::Routed::Run(cmd) => Ok((Phase::Admin(cmd), cmd.query)),
                    admin::Routed::Answer(response) => Err(response),
                }
            }
        }
    }
}

/// Serves `endpoint` on `listener`: reads each request head (bounded, with
/// a deadline), and for a request that needs a report asks the cores for
/// it; the consumer writes the answer and closes. At most
/// [`http::CONNECTIONS_MAX`] requests run at once.
async fn serve_http(listener: TcpListener, endpoint: Endpoint, state: Shared, tx: Sender) {
    let active = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let Ok(mut stream) = listener.accept().await else {
            glommio::timer::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if active.get() >= http::CONNECTIONS_MAX {
            continue;
        }
        active.set(active.get() + 1);
        let (state, tx, active) = (state.clone(), tx.clone(), active.clone());
        spawn_local(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            let asked = loop {
                match http::parse(&head) {
                    http::Head::More => {}
                    asked => break asked,
                }
                let read = futures_lite::future::or(async { stream.read(&mut buf).await.ok() }, async {
                    glommio::timer::sleep(http::READ_TIMEOUT).await;
                    None
                })
                .await;
                match read {
                    Some(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break http::Head::Refused("408 Request Timeout"),
                }
            };
            let mut names = Vec::new();
            let routed = match asked {
                http::Head::Get { path, query } => {
                    if endpoint == Endpoint::Metrics {
                        names = metrics::requested_names(&query);
                    }
                    endpoint.route(&state.borrow(), &path, &query)
                }
                http::Head::Refused(status) => Err(http::error(status)),
                http::Head::More => unreachable!("the loop ends only with an answer"),
            };
            match routed {
                Ok((phase, query)) => {
                    let Ok(peer) = stream.peer_addr() else { return active.set(active.get() - 1) };
                    let conn = state.borrow_mut().add_conn(peer);
                    conn.inner.borrow_mut().phase = phase;
                    conn.inner.borrow_mut().metrics_names = names;
                    let writer = spawn_local(write_loop(conn.clone(), SharedStream::new(stream)));
                    let origin = Origin { shard: state.borrow().id, conn: conn.id };
                    if tx.send(ToBroadcast::Admin { origin, query }).await.is_err() {
                        conn.close();
                    }
                    writer.await;
                    state.borrow_mut().remove_conn(&conn);
                }
                Err(response) => {
                    let _ = stream.write_all(response.as_bytes()).await;
                }
            }
            active.set(active.get() - 1);
        })
        .detach();
    }
}

/// Reports sessions with activity to the broadcast core twice per tick.
async fn report_touches(state: Shared, tx: Sender, tick_ms: u32) {
    let every = Duration::from_millis((tick_ms as u64 / 2).max(1));
    loop {
        glommio::timer::sleep(every).await;
        let touched: Vec<i64> = state.borrow_mut().touched.drain().filter(|s| *s != 0).collect();
        if !touched.is_empty() && tx.send(ToBroadcast::Touch(touched)).await.is_err() {
            return;
        }
    }
}
