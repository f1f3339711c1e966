//! SASL DIGEST-MD5 (RFC 2831) on the server side, as ZooKeeper's Java
//! server runs it (`Sasl.createSaslServer("DIGEST-MD5", "zookeeper",
//! "zk-sasl-md5", ...)`): to a first, empty token it answers a challenge
//! (realm `zk-sasl-md5`, a fresh nonce, qop `auth`, charset utf-8,
//! algorithm md5-sess); to the client's response it checks the digest of
//! the user's password from the JAAS file, and answers `rspauth`, which
//! proves the server knows it too. The authorization id (the user, unless
//! the client named another) becomes the connection's `sasl` identity.
//! Kerberos (GSSAPI) is not supported.

pub use crate::config::jaas::SaslUsers;
use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// The realm and server name ZooKeeper's DIGEST-MD5 server uses.
pub const REALM: &str = "zk-sasl-md5";
/// The digest-uri clients must name: ZooKeeper's protocol and server name.
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestMd5 {
    /// Nothing sent yet.
    Start,
    /// The challenge went out with this nonce.
    Challenged { nonce: String },
    /// Authenticated (or failed): no more steps.
    Done,
}

/// What a step gives back.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the client's next.
    Challenge(Vec<u8>),
    /// Authenticated as `authorization_id`; send `token` (the rspauth).
    Authenticated { token: Vec<u8>, authorization_id: String },
}

impl DigestMd5 {
    /// Takes the client's `token`; `nonce` is fresh randomness for the challenge.
    pub fn step(&mut self, token: &[u8], users: &SaslUsers, nonce: impl FnOnce() -> String) -> Result<Step, String> {
        match std::mem::replace(self, DigestMd5::Done) {
            DigestMd5::Start => {
                let nonce = nonce();
                let challenge = format!("realm=\"{REALM}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess");
                *self = DigestMd5::Challenged { nonce };
                Ok(Step::Challenge(challenge.into_bytes()))
            }
            DigestMd5::Challenged { nonce } => answer(token, &nonce, users),
            DigestMd5::Done => Err("the SASL exchange is already over".into()),
        }
    }
}

/// Checks the client's digest-response against the user's password.
fn answer(token: &[u8], nonce: &str, users: &SaslUsers) -> Result<Step, String> {
    let text = std::str::from_utf8(token).map_err(|_| "the digest-response is not UTF-8".to_string())?;
    let fields = directives(text)?;
    let get = |key: &str| fields.get(key).map(String::as_str).ok_or_else(|| format!("the digest-response has no {key}"));
    let (username, cnonce, nc, response) = (get("username")?, get("cnonce")?, get("nc")?, get("response")?);
    let realm = fields.get("realm").map_or(REALM, String::as_str);
    if get("nonce")? != nonce {
        return Err("the digest-response answers another nonce".into());
    }
    let qop = fields.get("qop").map_or("auth", String::as_str);
    if qop != "auth" {
        return Err(format!("qop {qop} is not offered (auth is)"));
    }
    let uri = get("digest-uri")?;
    if uri != DIGEST_URI {
        return Err(format!("digest-uri {uri} is not this server's ({DIGEST_URI})"));
    }
    let password = users.passwords.get(username).ok_or_else(|| format!("no user {username} in the JAAS Server section"))?;
    let authzid = fields.get("authzid").map(String::as_str);
    let digest = |a2_prefix: &str| {
        let mut a1 = Md5::digest(format!("{username}:{realm}:{password}").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        if let Some(z) = authzid {
            a1.extend_from_slice(format!(":{z}").as_bytes());
        }
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(format!("{a2_prefix}:{uri}").as_bytes()));
        hex(&Md5::digest(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes()))
    };
    if digest("AUTHENTICATE") != response.to_ascii_lowercase() {
        return Err(format!("wrong password for {username}"));
    }
    let token = format!("rspauth={}", digest("")).into_bytes();
    Ok(Step::Authenticated { token, authorization_id: authzid.unwrap_or(username).to_string() })
}

/// A digest message's `key=value` and `key="quoted value"` directives.
fn directives(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| format!("a directive without a value in {text:?}"))?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                        Some((i, '"')) => break i + 1,
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("an unterminated quoted value in {text:?}")),
                    }
                };
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        out.insert(key.trim().to_ascii_lowercase(), value);
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831's example computation, with this server's realm and uri: a
    /// client's response computed independently here must authenticate.
    fn client_response(user: &str, password: &str, nonce: &str, cnonce: &str, authzid: Option<&str>) -> String {
        let mut a1 = Md5::digest(format!("{user}:{REALM}:{password}").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        if let Some(z) = authzid {
            a1.extend_from_slice(format!(":{z}").as_bytes());
        }
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(format!("AUTHENTICATE:{DIGEST_URI}").as_bytes()));
        let response = hex(&Md5::digest(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes()));
        let authz = authzid.map_or(String::new(), |z| format!(",authzid=\"{z}\""));
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"{REALM}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={response},qop=auth{authz}"
        )
    }

    #[test]
    fn a_digest_md5_exchange_authenticates_and_refuses() {
        let users = SaslUsers { passwords: BTreeMap::from([("bob".to_string(), "bobsecret".to_string())]) };
        let mut sasl = DigestMd5::Start;
        let Step::Challenge(challenge) = sasl.step(b"", &users, || "n0nce".into()).unwrap() else { panic!("a challenge first") };
        let challenge = directives(std::str::from_utf8(&challenge).unwrap()).unwrap();
        assert_eq!((challenge["realm"].as_str(), challenge["nonce"].as_str(), challenge["qop"].as_str()), (REALM, "n0nce", "auth"));
        let response = client_response("bob", "bobsecret", "n0nce", "c0", None);
        let Step::Authenticated { token, authorization_id } = sasl.step(response.as_bytes(), &users, String::new).unwrap() else { panic!() };
        assert_eq!(authorization_id, "bob");
        assert!(token.starts_with(b"rspauth="));
        assert!(sasl.step(b"", &users, String::new).is_err(), "the exchange is over");
        let quoted = directives(r#"a="x\"y,z", b=2 ,c="""#).unwrap();
        assert_eq!((quoted["a"].as_str(), quoted["b"].as_str(), quoted["c"].as_str()), ("x\"y,z", "2", ""));

        for (wrong, why) in [
            (client_response("bob", "nope", "n0nce", "c", None), "wrong password"),
            (client_response("eve", "bobsecret", "n0nce", "c", None), "no user eve"),
            (client_response("bob", "bobsecret", "other", "c", None), "another nonce"),
        ] {
            let mut sasl = DigestMd5::Challenged { nonce: "n0nce".into() };
            assert!(sasl.step(wrong.as_bytes(), &users, String::new).unwrap_err().contains(why));
        }
        let mut sasl = DigestMd5::Challenged { nonce: "n0nce".into() };
        let as_alice = client_response("bob", "bobsecret", "n0nce", "c", Some("alice"));
        assert!(matches!(sasl.step(as_alice.as_bytes(), &users, String::new), Ok(Step::Authenticated { authorization_id, .. }) if authorization_id == "alice"));
    }
}
