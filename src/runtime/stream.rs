//! One client socket used by two tasks: the connection's reader and its
//! writer. glommio keeps separate readiness state for the two directions,
//! so each half borrows the stream only for the duration of one poll. The
//! socket is plain TCP, or TLS over it (the secure client port): a TLS
//! session reads and writes through one state, which the same borrowing
//! shares between the two tasks.

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// The socket under a [`SharedStream`].
enum Socket {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A cloneable handle on a socket shared by the tasks of one executor.
#[derive(Clone)]
pub struct SharedStream(Rc<RefCell<Socket>>);

impl SharedStream {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream) -> SharedStream {
        SharedStream(Rc::new(RefCell::new(Socket::Plain(stream))))
    }

    /// Wraps a TLS session whose handshake is done.
    pub fn tls(stream: TlsStream<TcpStream>) -> SharedStream {
        SharedStream(Rc::new(RefCell::new(Socket::Tls(Box::new(stream)))))
    }

    /// Shuts both directions down, waking a reader parked on the socket.
    pub fn shutdown(&self) {
        let fd = match &*self.0.borrow() {
            Socket::Plain(s) => std::os::fd::AsRawFd::as_raw_fd(s),
            Socket::Tls(s) => std::os::fd::AsRawFd::as_raw_fd(s.get_ref().0),
        };
        // SAFETY: plain syscall on a descriptor this handle keeps open.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_close(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
