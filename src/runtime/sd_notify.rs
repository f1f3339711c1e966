//! systemd's readiness protocol (`sd_notify`): under a `Type=notify` unit,
//! systemd sets `NOTIFY_SOCKET`, and keeper sends `READY=1` once it serves
//! (recovery done, every core started, the client port open) and
//! `STOPPING=1` when a stop begins. Without `NOTIFY_SOCKET` nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (for example `READY=1`) to systemd, if it listens. A
/// failure is reported and otherwise ignored: the server runs on.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = address(&target).and_then(|addr| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr));
    if let Err(e) = sent {
        tracing::warn!("cannot tell systemd {state:?} through NOTIFY_SOCKET={}: {e}", target.to_string_lossy());
    }
}

/// `NOTIFY_SOCKET` as an address: a path, or `@name` for Linux's abstract namespace.
fn address(target: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match target.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;

    #[test]
    fn abstract_and_path_addresses() {
        assert!(address(std::ffi::OsStr::new("@/org/freedesktop/systemd1/notify")).unwrap().as_abstract_name().is_some());
        assert!(address(std::ffi::OsStr::new("/run/systemd/notify")).unwrap().as_pathname().is_some());
    }
}
