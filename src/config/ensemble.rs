//! The ensemble part of zoo.cfg: the `server.N` lines, this server's id
//! (`myid` in dataDir), its role, and the checks that stop a server from
//! starting on a configuration that cannot work.
//!
//! ```text
//! server.N = host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]
//! ```
//! `host` may be an IPv6 address in brackets. keeper talks to its peers on
//! `peerPort` only: the election port is accepted, checked, and unused
//! (raft elects over the same links).

use super::ConfigError;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;

/// Whether a server votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Votes in elections and counts towards the write quorum.
    Participant,
    /// Serves clients and follows the log, but does not vote (a raft learner).
    Observer,
}

impl Role {
    /// `participant` or `observer`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "participant" => Some(Role::Participant),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }

    /// The word zoo.cfg uses.
    pub fn name(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u8,
    pub host: String,
    pub peer_port: u16,
    pub election_port: u16,
    pub role: Role,
    /// The client address the line gives (`;[host:]port`), if any.
    pub client_host: Option<String>,
    pub client_port: Option<u16>,
    /// The config line, for messages.
    pub line: usize,
}

impl ServerSpec {
    /// The peer address as written, `host:port` (brackets around IPv6).
    pub fn peer_address(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.peer_port) } else { format!("{}:{}", self.host, self.peer_port) }
    }
}

/// Splits `[v6]:rest` or `host:rest` into the host and what follows its colon.
fn split_host(text: &str) -> Result<(&str, &str), String> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']').ok_or("an IPv6 address needs its closing ']'")?;
        let rest = rest.strip_prefix(':').ok_or("expected ':' after the address")?;
        return Ok((host, rest));
    }
    text.split_once(':').ok_or_else(|| "expected host:peerPort:electionPort".to_string())
}

fn port(text: &str) -> Result<u16, String> {
    text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("bad port {text:?}"))
}

/// Parses one `server.N=...` line (`key` is `server.N`).
pub fn parse_server(key: &str, value: &str, line: usize) -> Result<ServerSpec, String> {
    let id = key["server.".len()..].parse::<u8>().ok().filter(|id| (1..255).contains(id)).ok_or("the server id N must be 1-254")?;
    let (addr, client) = match value.split_once(';') {
        Some((addr, client)) => (addr.trim(), Some(client.trim())),
        None => (value.trim(), None),
    };
    let (host, rest) = split_host(addr)?;
    let fields: Vec<&str> = rest.split(':').collect();
    if fields.len() < 2 || fields.len() > 3 || host.is_empty() {
        return Err("expected host:peerPort:electionPort[:participant|observer]".into());
    }
    let role = match fields.get(2) {
        None => Role::Participant,
        Some(r) => Role::parse(r).ok_or_else(|| format!("unknown role {r:?}: expected participant or observer"))?,
    };
    let (client_host, client_port) = match client {
        None => (None, None),
        Some(c) if !c.contains(':') => (None, Some(port(c)?)),
        Some(c) => {
            let (h, p) = if c.starts_with('[') { split_host(c)? } else { c.rsplit_once(':').ok_or("bad client address")? };
            (Some(h.to_string()), Some(port(p)?))
        }
    };
    let (peer_port, election_port) = (port(fields[0])?, port(fields[1])?);
    Ok(ServerSpec { id, host: host.to_string(), peer_port, election_port, role, client_host, client_port, line })
}

/// Adds a parsed line, refusing a second line for the same id.
pub fn add_server(servers: &mut Vec<ServerSpec>, spec: ServerSpec) -> Result<(), ConfigError> {
    if let Some(first) = servers.iter().find(|s| s.id == spec.id) {
        return Err(ConfigError(format!("line {}: server.{} is listed twice (also on line {}); give each server its own id", spec.line, spec.id, first.line)));
    }
    servers.push(spec);
    Ok(())
}

/// Reads this server's id from `<dataDir>/myid`; it must have a server line.
pub fn read_my_id(data_dir: &Path, servers: &[ServerSpec]) -> Result<u8, ConfigError> {
    let path = data_dir.join("myid");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError(format!(
            "cannot read {} (required when server.N lines are present): {e}; write this server's id into it, for example `echo 1 > {}`",
            path.display(),
            path.display()
        ))
    })?;
    let id = text
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|id| (1..255).contains(id))
        .ok_or_else(|| ConfigError(format!("{}: expected a server id between 1 and 254, found {:?}", path.display(), text.trim())))?;
    if !servers.iter().any(|s| s.id == id) {
        let listed: Vec<String> = servers.iter().map(|s| s.id.to_string()).collect();
        return Err(ConfigError(format!(
            "{}: server id {id} has no server.{id} line in the config (the config lists {}); fix myid or add the line",
            path.display(),
            listed.join(", ")
        )));
    }
    Ok(id)
}

/// The checks that need the whole list and this server's id: an odd,
/// non-zero number of voters; no two servers on one peer address; this
/// server's role as `peerType` says; its own peer host an address of this
/// machine.
pub fn validate(servers: &[ServerSpec], my_id: u8, peer_type: Option<(Role, usize)>) -> Result<(), ConfigError> {
    let voters: Vec<&ServerSpec> = servers.iter().filter(|s| s.role == Role::Participant).collect();
    if voters.len().is_multiple_of(2) {
        let lines: Vec<String> = voters.iter().map(|s| format!("server.{} (line {})", s.id, s.line)).collect();
        return Err(ConfigError(format!(
            "{} voting servers ({}): a majority of an even number survives no more failures than one server fewer, and a split leaves no majority; \
             list an odd number of participants (make one an observer, or add or remove one)",
            voters.len(),
            if lines.is_empty() { "none".to_string() } else { lines.join(", ") }
        )));
    }
    for (i, a) in servers.iter().enumerate() {
        if let Some(b) = servers[i + 1..].iter().find(|b| b.host == a.host && b.peer_port == a.peer_port) {
            return Err(ConfigError(format!(
                "line {}: server.{} uses peer address {}, as server.{} on line {} does; give each server its own host:peerPort",
                b.line,
                b.id,
                b.peer_address(),
                a.id,
                a.line
            )));
        }
    }
    let me = servers.iter().find(|s| s.id == my_id).expect("read_my_id checked that this server is listed");
    if let Some((role, line)) = peer_type
        && role != me.role
    {
        return Err(ConfigError(format!(
            "line {line}: peerType={} but this server's line server.{} (line {}) makes it a {}; make them agree",
            role.name(),
            me.id,
            me.line,
            me.role.name()
        )));
    }
    if !is_local_host(&me.host) {
        return Err(ConfigError(format!(
            "line {}: server.{} is this server (myid {my_id}), but its host {:?} is not an address of this machine; \
             fix the host in server.{}, or the id in myid",
            me.line, me.id, me.host, me.id
        )));
    }
    Ok(())
}

/// Whether `host` (a name or address) resolves to an address this machine
/// can listen on. `0.0.0.0` and `::` count (ZooKeeper's quorumListenOnAllIPs habit).
fn is_local_host(host: &str) -> bool {
    let Ok(addrs) = (host, 0).to_socket_addrs() else { return false };
    addrs.map(|a: SocketAddr| a.ip()).any(|ip: IpAddr| ip.is_unspecified() || TcpListener::bind((ip, 0)).is_ok())
}

/// Servers 1..=n as participants on loopback (peer ports 2001.., election
/// ports 3001..), for tests and the simulator.
#[cfg(test)]
pub fn loopback_servers(n: usize) -> Vec<ServerSpec> {
    (1..=n as u8)
        .map(|id| ServerSpec {
            id,
            host: "127.0.0.1".into(),
            peer_port: 2000 + id as u16,
            election_port: 3000 + id as u16,
            role: Role::Participant,
            client_host: None,
            client_port: None,
            line: id as usize,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_roles_client_addresses_and_ipv6() {
        let s = parse_server("server.2", "10.0.0.2:2888:3888", 4).unwrap();
        assert_eq!((s.id, s.host.as_str(), s.peer_port, s.election_port, s.role, s.line), (2, "10.0.0.2", 2888, 3888, Role::Participant, 4));
        let s = parse_server("server.3", "h:1:2:observer;0.0.0.0:2181", 1).unwrap();
        assert_eq!((s.role, s.client_host.as_deref(), s.client_port), (Role::Observer, Some("0.0.0.0"), Some(2181)));
        let s = parse_server("server.4", "[::1]:2888:3888:participant;2182", 1).unwrap();
        assert_eq!((s.host.as_str(), s.client_port, s.peer_address()), ("::1", Some(2182), "[::1]:2888".to_string()));
        let s = parse_server("server.5", "a:1:2;[::1]:2183", 1).unwrap();
        assert_eq!((s.client_host.as_deref(), s.client_port), (Some("::1"), Some(2183)));
        for bad in ["host:1", "host:1:2:voter", "host:x:2", "[::1:1:2", ":1:2", "h:1:2:observer:9"] {
            assert!(parse_server("server.1", bad, 1).is_err(), "{bad}");
        }
        assert!(parse_server("server.0", "h:1:2", 1).is_err());
    }

    fn servers(roles: &[Role]) -> Vec<ServerSpec> {
        roles
            .iter()
            .enumerate()
            .map(|(i, r)| ServerSpec {
                id: i as u8 + 1,
                host: "127.0.0.1".into(),
                peer_port: 2000 + i as u16,
                election_port: 3000 + i as u16,
                role: *r,
                client_host: None,
                client_port: None,
                line: i + 1,
            })
            .collect()
    }

    #[test]
    fn bad_ensembles_are_refused_with_the_fix() {
        use Role::*;
        assert!(validate(&servers(&[Participant, Participant, Participant]), 2, None).is_ok());
        assert!(validate(&servers(&[Participant, Participant, Participant, Observer]), 4, Some((Observer, 9))).is_ok());
        let even = validate(&servers(&[Participant, Participant]), 1, None).unwrap_err().0;
        assert!(even.contains("2 voting servers") && even.contains("server.2 (line 2)") && even.contains("odd number"), "{even}");
        assert!(validate(&servers(&[Observer]), 1, None).unwrap_err().0.contains("0 voting servers"));
        let role = validate(&servers(&[Participant, Participant, Participant]), 1, Some((Observer, 7))).unwrap_err().0;
        assert!(role.contains("line 7") && role.contains("peerType=observer"), "{role}");
        let mut twins = servers(&[Participant, Participant, Participant]);
        twins[2].peer_port = twins[0].peer_port;
        let dup = validate(&twins, 1, None).unwrap_err().0;
        assert!(dup.contains("line 3") && dup.contains("server.1"), "{dup}");
        let mut far = servers(&[Participant]);
        far[0].host = "192.0.2.77".into();
        let err = validate(&far, 1, None).unwrap_err().0;
        assert!(err.contains("not an address of this machine") && err.contains("myid"), "{err}");
        let mut list = servers(&[Participant]);
        let again = ServerSpec { line: 8, ..list[0].clone() };
        let err = add_server(&mut list, again).unwrap_err().0;
        assert!(err.contains("line 8") && err.contains("listed twice") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn myid_must_exist_and_be_listed() {
        let dir = std::env::temp_dir().join(format!("keeper-myid-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let list = servers(&[Role::Participant, Role::Participant, Role::Participant]);
        assert!(read_my_id(&dir, &list).unwrap_err().0.contains("echo 1 >"));
        std::fs::write(dir.join("myid"), "7\n").unwrap();
        assert!(read_my_id(&dir, &list).unwrap_err().0.contains("no server.7 line"));
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        assert_eq!(read_my_id(&dir, &list).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
