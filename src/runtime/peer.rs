//! Peer links: TCP between the servers of an ensemble, on each server's
//! peer port (frames: [`crate::core::consensus::frame`]).
//!
//! Each server dials every other for what it sends to it, and reads what
//! the others dial in with; a link carries messages one way. The dialer's
//! first frame is its `Hello`: a server id that is not in this server's
//! configuration, or a membership (ids and roles) that differs, is refused
//! with a log line. Addresses are not compared: they may differ between
//! servers' configurations (names, NAT, proxies).
//!
//! Sending never waits: a message is framed and queued for its link, whose
//! task writes whatever is queued in one go. While a peer is unreachable
//! its task retries with a backoff and its queue holds at most
//! [`PEER_QUEUE_BYTES_MAX`]; past that, new messages are dropped (raft
//! sends again what it needs, and a slow follower is bounded by raft's
//! in-flight window). A frame that does not check closes its link.
//!
//! With `sslQuorum=true` every link is TLS: the dialer presents its
//! certificate and checks the other's, and the acceptor needs one
//! ([`crate::runtime::tls::peer_configs`]).

use crate::config::{Config, ServerSpec};
use crate::core::consensus::frame::{self, Frame, Hello};
use crate::core::messages::PeerMessage;
use crate::runtime::input::Input;
use crate::runtime::notify::{Mailbox, Notify};
use crate::runtime::tls::{PeerTls, Reloading};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::spawn_local;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

/// Bytes queued for one peer before new messages to it are dropped.
pub const PEER_QUEUE_BYTES_MAX: usize = 64 << 20;
/// The first and the longest wait between attempts to reach a peer.
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// A link that fails sooner than this after opening counts as a failed attempt.
const LINK_SHORT_LIVED: Duration = Duration::from_secs(1);
/// How long a probe of a server whose link closed waits for an answer, how
/// many times it tries, and how far apart.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const PROBE_ATTEMPTS: usize = 5;
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// A link unused this long is checked for a close by its peer before the next write.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(100);
/// Bytes read from a peer socket per read call.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// The framed messages waiting for one peer's link.
#[derive(Default)]
struct Outbound {
    frames: RefCell<Vec<u8>>,
    dropped: Cell<u64>,
    wake: Notify,
}

/// The sending side of every link of this server.
pub struct Peers {
    links: HashMap<u64, Rc<Outbound>>,
}

/// This server's identity on its links.
fn hello(cfg: &Config) -> Hello {
    let members: Vec<(u64, &str)> = cfg.servers.iter().map(|s| (s.id as u64, s.role.name())).collect();
    Hello { server_id: cfg.my_id as u64, ensemble: frame::ensemble_identity(&members) }
}

impl Peers {
    /// Starts a link task for every other server of the ensemble, and the
    /// accept loop on `listener` (this server's peer port), which hands
    /// every message read to `deliver`. When an inbound link closes and
    /// its server's peer port then refuses a connection (its process is
    /// gone, not merely slow or cut off), `gone` is delivered.
    pub fn start<E: 'static>(
        cfg: &Config,
        listener: OwnedFd,
        tls: Option<PeerTls>,
        mailbox: Rc<Mailbox<E>>,
        deliver: fn(u64, PeerMessage) -> E,
        gone: fn(u64) -> E,
    ) -> Peers {
        let me = hello(cfg);
        // Each new link takes the TLS configuration as it is then: renewed stores apply to new links.
        let tls = tls.map(|t| {
            let ssl = cfg.ssl_quorum.as_ref().expect("peer TLS comes from ssl.quorum.*");
            let reloading = Rc::new(RefCell::new(Reloading::new(ssl, t, crate::runtime::tls::peer_configs)));
            spawn_local(crate::runtime::tls::follow_certificates("peer links".into(), reloading.clone())).detach();
            reloading
        });
        let mut links = HashMap::new();
        for server in cfg.servers.iter().filter(|s| s.id != cfg.my_id) {
            let out = Rc::new(Outbound::default());
            links.insert(server.id as u64, out.clone());
            spawn_local(dial(server.clone(), me, out, tls.clone())).detach();
        }
        let inbound = Rc::new(Inbound { me, members: cfg.servers.clone(), mailbox, deliver, gone });
        // SAFETY: the descriptor is a listening TCP socket handed over whole.
        let listener = unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) };
        spawn_local(accept(listener, tls, inbound)).detach();
        Peers { links }
    }

    /// Bytes queued for server `to` and not yet written to its link.
    pub fn queued_bytes(&self, to: u64) -> usize {
        self.links.get(&to).map_or(0, |out| out.frames.borrow().len())
    }

    /// Queues a message for server `to`.
    pub fn send(&self, to: u64, msg: &PeerMessage) {
        let Some(out) = self.links.get(&to) else {
            return tracing::warn!("no link to server {to}, which is not in the configuration");
        };
        let frame = frame::message_frame(msg);
        let mut frames = out.frames.borrow_mut();
        if frames.len() + frame.len() > PEER_QUEUE_BYTES_MAX {
            if out.dropped.get() == 0 {
                tracing::warn!("more than {PEER_QUEUE_BYTES_MAX} bytes queued for server {to}; dropping messages until it catches up");
            }
            out.dropped.set(out.dropped.get() + 1);
            return;
        }
        frames.extend_from_slice(&frame);
        drop(frames);
        out.wake.notify();
    }
}

/// The peer address of a server, resolved now (names may change).
fn resolve(server: &ServerSpec) -> Option<SocketAddr> {
    (server.host.as_str(), server.peer_port).to_socket_addrs().ok()?.next()
}

/// Keeps a link to `server` up and writes what is queued for it. A link
/// that closes within [`LINK_SHORT_LIVED`] of opening (a peer refusing it,
/// a proxy in between cutting it) counts as a failed attempt: the backoff
/// grows and the log says so once, not on every try.
async fn dial(server: ServerSpec, me: Hello, out: Rc<Outbound>, tls: Option<Rc<RefCell<Reloading<PeerTls>>>>) {
    let mut backoff = RECONNECT_FIRST;
    // Whether the log already said the peer cannot be reached, or that its links close at once.
    let (mut unreachable, mut flapping) = (false, false);
    loop {
        let connected = match resolve(&server) {
            Some(addr) => TcpStream::connect(addr).await.map_err(|e| e.to_string()),
            None => Err(format!("cannot resolve {}", server.host)),
        };
        let mut stream = match connected {
            Ok(s) => s,
            Err(e) => {
                if !unreachable {
                    tracing::warn!("cannot reach server {} at {}: {e}; retrying", server.id, server.peer_address());
                    unreachable = true;
                }
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        unreachable = false;
        if !flapping {
            tracing::info!("link to server {} at {} is up", server.id, server.peer_address());
        }
        let opened = std::time::Instant::now();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let connector = tls.as_ref().map(|t| futures_rustls::TlsConnector::from(t.borrow().current().dial));
        let failure = match &connector {
            None => write_queued(&mut stream, fd, &me, &out).await,
            Some(connector) => match tls_to(connector, &server, stream).await {
                Ok(mut secured) => write_queued(&mut secured, fd, &me, &out).await,
                Err(e) => e,
            },
        };
        if opened.elapsed() < LINK_SHORT_LIVED {
            if !flapping {
                tracing::warn!("link to server {} closed as soon as it opened ({failure}); retrying with a backoff", server.id);
                flapping = true;
            }
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(RECONNECT_MAX);
        } else {
            tracing::warn!("link to server {} failed: {failure}; reconnecting", server.id);
            backoff = RECONNECT_FIRST;
            flapping = false;
        }
    }
}

/// Writes the hello, then whatever is queued for the link as it comes,
/// until a write fails; returns that failure. A link idle for
/// [`IDLE_CHECK_AFTER`] is first checked for a close by the peer (a
/// follower's link to another follower is idle for as long as both
/// follow, and that peer may have restarted since): writing into a closed
/// link would lose the messages, so they stay queued for the next one.
async fn write_queued<S: futures_lite::AsyncWrite + Unpin>(stream: &mut S, fd: RawFd, me: &Hello, out: &Outbound) -> std::io::Error {
    // (A TLS session holds records back until flushed.)
    if let Err(e) = write_flushed(stream, &frame::hello_frame(me)).await {
        return e;
    }
    let mut last_write = std::time::Instant::now();
    loop {
        if out.frames.borrow().is_empty() {
            out.wake.wait().await;
            continue;
        }
        if last_write.elapsed() >= IDLE_CHECK_AFTER && closed_by_peer(fd) {
            return std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the peer had closed the idle link (its messages wait for the next one)");
        }
        let pending = std::mem::take(&mut *out.frames.borrow_mut());
        if let Err(e) = write_flushed(stream, &pending).await {
            return e;
        }
        last_write = std::time::Instant::now();
        out.dropped.set(0);
    }
}

async fn write_flushed<S: futures_lite::AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// How long a peer has to finish a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `handshake` within [`TLS_HANDSHAKE_TIMEOUT`].
async fn within_handshake_timeout<T>(handshake: impl std::future::Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    futures_lite::future::or(handshake, async {
        glommio::timer::sleep(TLS_HANDSHAKE_TIMEOUT).await;
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the TLS handshake took too long"))
    })
    .await
}

/// The TLS session of a link dialed to `server`, which must present a
/// certificate for its host (unless ssl.quorum.hostnameVerification=false).
async fn tls_to(
    connector: &futures_rustls::TlsConnector,
    server: &ServerSpec,
    stream: TcpStream,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, std::io::Error> {
    let name = rustls_pki_types::ServerName::try_from(server.host.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} is not a name TLS can check: {e}", server.host)))?;
    within_handshake_timeout(connector.connect(name, stream)).await.map_err(|e| std::io::Error::new(e.kind(), format!("TLS handshake: {e}")))
}

/// Whether the peer closed the socket `fd` (it never sends on a link this
/// server dialed, so a readable end of stream means it closed it).
fn closed_by_peer(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte peek into a local buffer on a socket this task owns.
    let n = unsafe { libc::recv(fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN))
}

/// What every inbound link shares: this server's hello, the members, and
/// where what arrives goes.
struct Inbound<E> {
    me: Hello,
    members: Vec<ServerSpec>,
    mailbox: Rc<Mailbox<E>>,
    deliver: fn(u64, PeerMessage) -> E,
    gone: fn(u64) -> E,
}

/// Accepts links from the other servers.
async fn accept<E: 'static>(listener: TcpListener, tls: Option<Rc<RefCell<Reloading<PeerTls>>>>, inbound: Rc<Inbound<E>>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let peer = stream.peer_addr().map_or("an unknown address".to_string(), |a| a.to_string());
                let tls = tls.as_ref().map(|t| futures_rustls::TlsAcceptor::from(t.borrow().current().accept));
                let inbound = inbound.clone();
                spawn_local(async move {
                    match tls {
                        None => read_link(stream, peer, inbound).await,
                        Some(acceptor) => match within_handshake_timeout(acceptor.accept(stream)).await {
                            Ok(secured) => read_link(secured, peer, inbound).await,
                            Err(e) => tracing::warn!(peer = %peer, "refusing the peer link: TLS handshake: {e}"),
                        },
                    }
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!("accepting a peer link failed: {e}");
                glommio::timer::sleep(RECONNECT_FIRST).await;
            }
        }
    }
}

/// Reads one inbound link: its hello, then messages, until it closes or a
/// frame fails its checks. A link that closes (rather than failing a check)
/// sends a probe after its server.
async fn read_link<E: 'static, S: futures_lite::AsyncRead + Unpin>(mut stream: S, peer: String, inbound: Rc<Inbound<E>>) {
    let mut input = Input::new(READ_CHUNK_BYTES);
    let mut from: Option<u64> = None;
    loop {
        loop {
            let (frame, used) = match frame::decode(input.filled()) {
                Ok(Some(decoded)) => decoded,
                Ok(None) => break,
                Err(e) => return tracing::warn!(peer = %peer, "closing the peer link: {}", e.0),
            };
            input.consume(used);
            match (frame, from) {
                (Frame::Hello(h), None) => {
                    if let Err(why) = check_hello(&h, &inbound.me, &inbound.members) {
                        return tracing::warn!(peer = %peer, "refusing the peer link: {why}");
                    }
                    from = Some(h.server_id);
                }
                (Frame::Message(msg), Some(id)) => inbound.mailbox.push((inbound.deliver)(id, msg)).await,
                (Frame::Hello(_), Some(_)) => return tracing::warn!(peer = %peer, "closing the peer link: a second hello"),
                (Frame::Message(_), None) => return tracing::warn!(peer = %peer, "closing the peer link: a message before its hello"),
            }
        }
        match stream.read(input.spare()).await {
            Ok(0) | Err(_) => break,
            Ok(n) => input.fill(n),
        }
    }
    if let Some(server) = from.and_then(|id| inbound.members.iter().find(|s| s.id as u64 == id)) {
        probe(server, &inbound).await;
    }
}

/// Tries `server`'s peer port a few times, [`PROBE_INTERVAL`] apart: a
/// refusal means its process is gone. (A process being killed may close
/// its links just before its listener, so one accepted connection does
/// not yet say it lives.)
async fn probe<E: 'static>(server: &ServerSpec, inbound: &Inbound<E>) {
    for _ in 0..PROBE_ATTEMPTS {
        let Some(addr) = resolve(server) else { return };
        match TcpStream::connect_timeout(addr, PROBE_TIMEOUT).await {
            Err(glommio::GlommioError::IoError(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!("server {}'s peer port {addr} refuses connections: its process is gone", server.id);
                return inbound.mailbox.push((inbound.gone)(server.id as u64)).await;
            }
            Err(_) => return,
            Ok(accepted) => drop(accepted),
        }
        glommio::timer::sleep(PROBE_INTERVAL).await;
    }
}

/// Whether a dialing server may link to this one.
fn check_hello(h: &Hello, me: &Hello, members: &[ServerSpec]) -> Result<(), String> {
    if !members.iter().any(|s| s.id as u64 == h.server_id) || h.server_id == me.server_id {
        let ids: Vec<u8> = members.iter().map(|s| s.id).collect();
        return Err(format!("server id {} is not another member of this ensemble ({ids:?})", h.server_id));
    }
    if h.ensemble != me.ensemble {
        return Err(format!("server {} is configured with other members or roles (ensemble {:#x}, ours {:#x})", h.server_id, h.ensemble, me.ensemble));
    }
    Ok(())
}

/// Binds this server's peer port, trying `attempts` times a second apart (0: until it works).
pub fn bind(cfg: &Config) -> Result<OwnedFd, String> {
    let me = cfg.servers.iter().find(|s| s.id == cfg.my_id).expect("a configured member has a server line");
    let addr = resolve(me).ok_or_else(|| format!("cannot resolve this server's host {} (server.{})", me.host, me.id))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => return Ok(OwnedFd::from(listener)),
            Err(e) if cfg.election_port_bind_retry == 0 || attempt < cfg.election_port_bind_retry => {
                tracing::info!(
                    "cannot bind the peer port {addr} ({e}); retrying in 1 s (attempt {attempt}, electionPortBindRetry={})",
                    cfg.election_port_bind_retry
                );
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(format!("cannot bind the peer port {addr} of server.{} (line {}): {e}", me.id, me.line)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_from_strangers_and_other_ensembles_are_refused() {
        let me = Hello { server_id: 1, ensemble: 7 };
        let members: Vec<ServerSpec> = (1..=3)
            .map(|id| ServerSpec {
                id,
                host: "127.0.0.1".into(),
                peer_port: 2888,
                election_port: 3888,
                role: crate::config::ensemble::Role::Participant,
                client_host: None,
                client_port: None,
                line: id as usize,
            })
            .collect();
        assert!(check_hello(&Hello { server_id: 2, ensemble: 7 }, &me, &members).is_ok());
        assert!(check_hello(&Hello { server_id: 4, ensemble: 7 }, &me, &members).unwrap_err().contains("not another member"));
        assert!(check_hello(&Hello { server_id: 1, ensemble: 7 }, &me, &members).is_err(), "not from itself");
        assert!(check_hello(&Hello { server_id: 2, ensemble: 8 }, &me, &members).unwrap_err().contains("other members"));
    }
}
