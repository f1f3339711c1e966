//! One client session speaking the ZooKeeper protocol on a glommio executor:
//! handshake, pipelined requests, replies in order. Built on keeper's own
//! jute codec (`keeper::proto`).

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use keeper::proto::codes::OpCode;
use keeper::proto::encode;
use keeper::proto::frame::{self, FrameCheck};
use keeper::proto::jute::JuteReader;
use keeper::proto::records::ReplyHeader;
use keeper::proto::request::Request;
use std::net::SocketAddr;

/// How long a handshake may go unanswered before the server is given up on.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The largest reply frame accepted (ZooKeeper clients use jute.maxbuffer).
const MAX_REPLY_BYTES: usize = 16 << 20;

/// A reply: header and body.
pub struct Reply {
    pub header: ReplyHeader,
    pub body: JuteReader,
}

/// A connected session.
pub struct Session {
    stream: TcpStream,
    input: BytesMut,
    scratch: Vec<u8>,
    output: BytesMut,
    next_xid: i32,
    pub session_id: i64,
    /// The session's password and negotiated timeout, to re-attach elsewhere.
    passwd: Bytes,
    timeout_ms: i32,
}

impl Session {
    /// Connects and opens a new session with `timeout_ms`.
    pub async fn connect(addr: SocketAddr, timeout_ms: i32) -> std::io::Result<Session> {
        Session::open(addr, 0, &[0; 16], timeout_ms).await
    }

    /// Connects to `addr` and re-attaches this session there (its server
    /// closed the connection); the new connection replaces this one.
    pub async fn reattach(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        let moved = Session::open(addr, self.session_id, &self.passwd.clone(), self.timeout_ms).await?;
        if moved.session_id != self.session_id {
            return Err(std::io::Error::other(format!("session 0x{:x} was not re-attached", self.session_id)));
        }
        *self = Session { next_xid: self.next_xid, ..moved };
        Ok(())
    }

    async fn open(addr: SocketAddr, session_id: i64, passwd: &[u8], timeout_ms: i32) -> std::io::Result<Session> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut s = Session {
            stream,
            input: BytesMut::with_capacity(64 << 10),
            scratch: vec![0; 64 << 10],
            output: BytesMut::with_capacity(16 << 10),
            next_xid: 1,
            session_id: 0,
            passwd: Bytes::new(),
            timeout_ms,
        };
        encode::connect(&mut s.output, 0, session_id, passwd, timeout_ms);
        s.flush().await?;
        // A server that takes the connection but never answers the handshake
        // (it lost its leader meanwhile) is given up on, as real clients do.
        let answer = async { Some(s.read_frame().await) };
        let give_up = async {
            glommio::timer::sleep(HANDSHAKE_TIMEOUT).await;
            None
        };
        let resp = futures_lite::future::or(answer, give_up).await.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer to the handshake from {addr} within {HANDSHAKE_TIMEOUT:?}"))
        })??;
        let (negotiated, session_id, passwd) = encode::connect_response(resp).map_err(|e| std::io::Error::other(format!("bad connect response: {e}")))?;
        if session_id == 0 {
            return Err(std::io::Error::other("the server refused the session (expired, or a wrong password)"));
        }
        (s.session_id, s.passwd, s.timeout_ms) = (session_id, passwd, negotiated);
        Ok(s)
    }

    /// Queues a request (not sent until `flush`); returns its xid.
    pub fn queue(&mut self, op: OpCode, req: &Request) -> i32 {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        encode::request(&mut self.output, xid, op, req);
        xid
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let out = self.output.split();
        self.stream.write_all(&out).await
    }

    async fn read_frame(&mut self) -> std::io::Result<Bytes> {
        loop {
            match frame::check(&self.input, MAX_REPLY_BYTES) {
                FrameCheck::Ready(len) => return Ok(frame::take(&mut self.input, len)),
                FrameCheck::TooLarge(len) => return Err(std::io::Error::other(format!("reply frame of {len} bytes"))),
                FrameCheck::Incomplete => {
                    // Read into a scratch buffer first: if this future is dropped
                    // while waiting (a timeout), the input is left as it was.
                    let n = self.stream.read(&mut self.scratch).await?;
                    self.input.extend_from_slice(&self.scratch[..n]);
                    if n == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "server closed the connection"));
                    }
                }
            }
        }
    }

    /// The next frame from the server: a reply or a notification (xid -1).
    pub async fn recv(&mut self) -> std::io::Result<Reply> {
        let mut body = JuteReader::new(self.read_frame().await?);
        let header = ReplyHeader::read(&mut body).map_err(|e| std::io::Error::other(format!("bad reply header: {e}")))?;
        Ok(Reply { header, body })
    }

    /// Sends one request and waits for its reply, skipping notifications.
    pub async fn call(&mut self, op: OpCode, req: &Request) -> std::io::Result<Reply> {
        let xid = self.queue(op, req);
        self.flush().await?;
        loop {
            let reply = self.recv().await?;
            if reply.header.xid == xid || (op == OpCode::Ping && reply.header.xid == -2) {
                return Ok(reply);
            }
        }
    }

    /// Closes the session (closeSession, then the socket).
    pub async fn close(mut self) {
        let _ = self.call(OpCode::CloseSession, &Request::CloseSession).await;
        let _ = self.stream.close().await;
    }
}
