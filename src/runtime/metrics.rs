//! The Prometheus endpoint, configured as ZooKeeper's is
//! (`metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`,
//! `metricsProvider.httpHost`, `metricsProvider.httpPort`, default 7000).
//! Shard 0 accepts on the metrics port. A `GET /metrics` asks the cores for
//! the report the four-letter words use, gathered between batches like
//! theirs, and gets it as Prometheus text ([`fourlw::prometheus`](super::fourlw::prometheus)).
//! At most [`CONNECTIONS_MAX`] scrapes run at once; a request with a body,
//! another method or another path gets an HTTP error and nothing else.

/// Scrapes served at once; a connection beyond them is closed.
pub const CONNECTIONS_MAX: usize = 8;
/// The largest request head read; a longer one is refused.
pub const REQUEST_HEAD_MAX: usize = 8 << 10;
/// The Prometheus text format ZooKeeper's provider serves.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// The head is not complete yet.
    More,
    Metrics,
    /// An HTTP error to answer with (its status line's code and reason).
    Refused(&'static str),
}

/// Reads a request head (`buf` holds what arrived so far).
pub fn parse(buf: &[u8]) -> Asked {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= REQUEST_HEAD_MAX { Asked::Refused("431 Request Header Fields Too Large") } else { Asked::More };
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
        return Asked::Refused("405 Method Not Allowed");
    }
    if has_body {
        return Asked::Refused("413 Content Too Large");
    }
    if target.split('?').next() != Some("/metrics") {
        return Asked::Refused("404 Not Found");
    }
    Asked::Metrics
}

/// A 200 response carrying `body`.
pub fn http_ok(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

/// An error response with `status` (code and reason).
pub fn http_error(status: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_strictly() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), Asked::More);
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Asked::Metrics);
        assert_eq!(parse(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), Asked::Metrics);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Asked::Refused("404 Not Found"));
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Asked::Refused("405 Method Not Allowed"));
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), Asked::Refused("413 Content Too Large"));
        assert_eq!(parse(&vec![b'a'; REQUEST_HEAD_MAX]), Asked::Refused("431 Request Header Fields Too Large"));
        assert!(http_ok("x 1.0\n").contains("Content-Length: 6\r\n"));
    }
}
