//! The little HTTP/1.1 the Prometheus endpoint and the AdminServer speak:
//! one `GET` per connection, its head read strictly (no body, a bounded
//! size, a deadline), one answer, then the connection closes. Anything
//! else gets an HTTP error and nothing more.

use std::time::Duration;

/// Requests served at once on one endpoint; a connection beyond them is closed.
pub const CONNECTIONS_MAX: usize = 8;
/// The largest request head read; a longer one is refused.
pub const REQUEST_HEAD_MAX: usize = 8 << 10;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The head is not complete yet.
    More,
    /// A GET of `path`, with its query string (without the `?`; may be empty).
    Get { path: String, query: String },
    /// An HTTP error to answer with (its status line's code and reason).
    Refused(&'static str),
}

/// Reads a request head (`buf` holds what arrived so far).
pub fn parse(buf: &[u8]) -> Head {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= REQUEST_HEAD_MAX { Head::Refused("431 Request Header Fields Too Large") } else { Head::More };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request.next().unwrap_or_default(), request.next().unwrap_or_default());
    let has_body = lines.filter_map(|l| l.split_once(':')).any(|(k, v)| {
        let k = k.trim();
        k.eq_ignore_ascii_case("transfer-encoding") || (k.eq_ignore_ascii_case("content-length") && v.trim() != "0")
    });
    if method != "GET" {
        return Head::Refused("405 Method Not Allowed");
    }
    if has_body {
        return Head::Refused("413 Content Too Large");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Head::Get { path: path.to_string(), query: query.to_string() }
}

/// The first value of parameter `name` in a query string (not percent-decoded).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A 200 response carrying `body` as `content_type`.
pub fn ok(content_type: &str, body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

/// An error response with `status` (code and reason).
pub fn error(status: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_strictly() {
        let get = |path: &str, query: &str| Head::Get { path: path.into(), query: query.into() };
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), Head::More);
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), get("/metrics", ""));
        assert_eq!(parse(b"GET /commands/stmk?traceMask=5&x=1 HTTP/1.0\r\n\r\n"), get("/commands/stmk", "traceMask=5&x=1"));
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Head::Refused("405 Method Not Allowed"));
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), Head::Refused("413 Content Too Large"));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Head::Refused("413 Content Too Large"));
        assert_eq!(parse(&vec![b'a'; REQUEST_HEAD_MAX]), Head::Refused("431 Request Header Fields Too Large"));
        assert_eq!(query_param("traceMask=5&x=1", "x"), Some("1"));
        assert_eq!(query_param("traceMask=5&traceMask=6", "traceMask"), Some("5"));
        assert_eq!(query_param("", "traceMask"), None);
        assert!(ok("text/plain", "x 1.0\n").contains("Content-Length: 6\r\n"));
    }
}
