//! Access control: permission checks, ACL validation and expansion, and the
//! auth schemes ZooKeeper ships (world, auth, digest, ip, super).
//!
//! Rules follow ZooKeeper 3.8 (`ZooKeeperServer.checkACL`,
//! `PrepRequestProcessor.fixupACL`, `DigestAuthenticationProvider`,
//! `IPAuthenticationProvider`):
//! - an empty ACL allows everything; a `super` identity allows everything;
//! - `world:anyone` matches every connection;
//! - `digest` ids match exactly; `ip` ids match the client address under an
//!   optional CIDR mask;
//! - `auth` in a new ACL expands to the connection's digest identities and is
//!   invalid when it has none.

use crate::proto::codes::ErrorCode;
use crate::proto::records::{Acl, Id};
use base64::Engine;
use sha1::{Digest, Sha1};

/// `user:base64(sha1("user:password"))`: the digest id for a `user:password` credential.
pub fn digest_id(credential: &str) -> String {
    let user = credential.split(':').next().unwrap_or("");
    let hash = Sha1::digest(credential.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Whether an identity with these ids may do `perm` on a node with `acl`.
pub fn allowed(acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
    if acl.is_empty() || ids.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        let (scheme, expr) = (a.id.scheme.as_str(), a.id.id.as_str());
        match scheme {
            "world" => expr == "anyone",
            "digest" => ids.iter().any(|id| id.scheme == "digest" && id.id == expr),
            "ip" => ids.iter().any(|id| id.scheme == "ip" && ip_matches(&id.id, expr)),
            // A TLS client's certificate subject, matched exactly (ZooKeeper's X509AuthenticationProvider).
            "x509" => ids.iter().any(|id| id.scheme == "x509" && id.id == expr),
            // A SASL authorization id, matched exactly (ZooKeeper's SASLAuthenticationProvider, DIGEST-MD5).
            "sasl" => ids.iter().any(|id| id.scheme == "sasl" && id.id == expr),
            _ => false,
        }
    })
}

/// `allowed` as a ZooKeeper result: NoAuth when denied.
pub fn check(acl: &[Acl], perm: i32, ids: &[Id]) -> Result<(), ErrorCode> {
    if allowed(acl, perm, ids) { Ok(()) } else { Err(ErrorCode::NoAuth) }
}

/// The schemes beyond world, digest and ip that ACLs may name.
pub use crate::config::AclSchemes as Schemes;

/// Validates a requested ACL and expands `auth` entries (ZooKeeper's fixupACL).
/// Duplicates are removed first, keeping the first occurrence.
pub fn fixup(acl: &[Acl], ids: &[Id], schemes: Schemes) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a.clone()),
            "auth" => {
                let mut any = false;
                // The authenticated ids: digest's, a TLS client's certificate subject, SASL's.
                for id in ids.iter().filter(|id| matches!(id.scheme.as_str(), "digest" | "x509" | "sasl")) {
                    any = true;
                    out.push(Acl { perms: a.perms, id: id.clone() });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if digest_id_is_valid(&a.id.id) => out.push(a.clone()),
            "ip" if ip_expr_is_valid(&a.id.id) => out.push(a.clone()),
            // An X.500 name, as Java's X500Principal accepts one: attribute=value pairs.
            "x509" if schemes.x509 && a.id.id.split(',').all(|rdn| rdn.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty())) => out.push(a.clone()),
            "sasl" if schemes.sasl && !a.id.id.is_empty() => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// Java's `id.split(":").length == 2`: trailing empty parts are dropped.
fn digest_id_is_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// An `ip` ACL expression: an address, optionally `/bits`.
fn ip_expr_is_valid(expr: &str) -> bool {
    parse_ip_expr(expr).is_some()
}

fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let addr = addr_bytes(addr)?;
    let max = addr.len() * 8;
    let bits = match bits {
        None => max,
        Some(b) => b.parse::<i32>().ok().filter(|b| *b >= 0 && *b as usize <= max)? as usize,
    };
    Some((addr, bits))
}

/// IPv4 the way Java's `Integer.parseInt` per octet reads it (leading zeros
/// allowed), else IPv6.
fn addr_bytes(addr: &str) -> Option<Vec<u8>> {
    let octets: Vec<&str> = addr.split('.').collect();
    if octets.len() == 4 {
        let parsed: Option<Vec<u8>> = octets.iter().map(|o| o.parse::<i32>().ok().filter(|v| (0..=255).contains(v)).map(|v| v as u8)).collect();
        return parsed;
    }
    addr.parse::<std::net::Ipv6Addr>().ok().map(|a| a.octets().to_vec())
}

/// Whether the client address `client` falls in the ACL expression `expr`.
pub fn ip_matches(client: &str, expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    let Some(mut remote) = addr_bytes(client) else {
        return false;
    };
    if remote.len() != acl_addr.len() {
        return false;
    }
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    acl_addr == remote
}

fn mask(bytes: &mut [u8], bits: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
}

/// The outcome of an addAuth request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Identities to add to the connection.
    Added(Vec<Id>),
    /// Unknown scheme (world and super included): AuthFailed, then the connection closes.
    Failed,
}

/// Handles addAuth for `scheme` with `auth` bytes, for a client at `client_ip`.
/// `super_digest` is the configured super user's digest id, if any.
pub fn authenticate(scheme: &str, auth: &[u8], client_ip: &str, super_digest: Option<&str>) -> AuthOutcome {
    match scheme {
        "digest" => {
            let credential = String::from_utf8_lossy(auth);
            let id = digest_id(&credential);
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", &id));
            AuthOutcome::Added(ids)
        }
        "ip" => AuthOutcome::Added(vec![Id::new("ip", client_ip)]),
        _ => AuthOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codes::perms;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id::new(scheme, id) }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // Known value: DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(digest_id("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn permission_checks() {
        let ids = vec![Id::new("ip", "10.1.2.3"), Id::new("digest", "u:h")];
        assert!(allowed(&[acl(perms::READ, "world", "anyone")], perms::READ, &[]));
        assert!(!allowed(&[acl(perms::READ, "world", "anyone")], perms::WRITE, &[]));
        assert!(allowed(&[acl(perms::ALL, "ip", "10.0.0.0/8")], perms::WRITE, &ids));
        assert!(!allowed(&[acl(perms::ALL, "ip", "10.1.3.0/24")], perms::WRITE, &ids));
        assert!(allowed(&[acl(perms::ADMIN, "digest", "u:h")], perms::ADMIN, &ids));
        assert!(allowed(&[], perms::ADMIN, &[]));
        assert!(allowed(&[acl(perms::READ, "digest", "x:y")], perms::ADMIN, &[Id::new("super", "")]));
    }

    #[test]
    fn fixup_expands_auth_and_rejects_bad_ids() {
        let ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        assert_eq!(fixup(&[acl(31, "auth", "")], &ids, Schemes::default()).unwrap(), vec![acl(31, "digest", "u:h")]);
        assert_eq!(fixup(&[acl(31, "auth", "")], &ids[..1], Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[], &ids, Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[acl(31, "world", "someone")], &ids, Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[acl(31, "digest", "user:")], &ids, Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[acl(31, "ip", "1.2.3.4/33")], &ids, Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert!(fixup(&[acl(31, "ip", "1.2.3.4/32"), acl(31, "ip", "::1")], &ids, Schemes::default()).is_ok());
        // x509 and sasl only where their providers exist.
        let named = [acl(31, "x509", "CN=c,O=o"), acl(31, "sasl", "bob")];
        assert_eq!(fixup(&named[..1], &ids, Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&named[1..], &ids, Schemes::default()), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&named, &ids, Schemes { x509: true, sasl: true }).unwrap().len(), 2);
        assert_eq!(fixup(&[acl(31, "world", "anyone"), acl(31, "world", "anyone")], &ids, Schemes::default()).unwrap().len(), 1);
    }

    #[test]
    fn auth_schemes() {
        assert_eq!(authenticate("world", b"anyone", "1.1.1.1", None), AuthOutcome::Failed);
        assert_eq!(authenticate("super", b"x", "1.1.1.1", None), AuthOutcome::Failed);
        let sup = digest_id("super:test");
        match authenticate("digest", b"super:test", "1.1.1.1", Some(&sup)) {
            AuthOutcome::Added(ids) => {
                assert_eq!(ids, vec![Id::new("super", ""), Id::new("digest", &sup)])
            }
            other => panic!("{other:?}"),
        }
    }
}
