//! TLS for the client port, configured with ZooKeeper's `ssl.*` keys and
//! served with rustls: the server's certificate and key from a PEM or
//! PKCS12 key store, the certificates it trusts for clients from a PEM or
//! PKCS12 trust store,
//! `ssl.clientAuth` (none, want, need), `ssl.protocol` and
//! `ssl.enabledProtocols` (TLSv1.2, TLSv1.3) and `ssl.ciphersuites` (their
//! IANA names, as Java spells them). A client's certificate names it for
//! the `x509` ACL scheme by its subject, as ZooKeeper's
//! `X509AuthenticationProvider` does.

use crate::config::{ClientAuth, Ssl, Store};
use rustls::crypto::{CryptoProvider, ring};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::SystemTime;

/// The rustls configuration the `ssl.*` settings describe, or why there is none.
pub fn server_config(ssl: &Ssl) -> Result<Arc<ServerConfig>, String> {
    let key_store = ssl.key_store.as_ref().ok_or("ssl.keyStore.location is not set")?;
    let (chain, key) = read_key_store(key_store)?;
    let provider = Arc::new(provider(&ssl.ciphersuites)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(ssl)?)
        .map_err(|e| format!("ssl.protocol, ssl.enabledProtocols and ssl.ciphersuites leave nothing to agree on: {e}"))?;
    let builder = match ssl.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let trust_store = ssl.trust_store.as_ref().ok_or("ssl.clientAuth asks for client certificates, but ssl.trustStore.location is not set")?;
            let roots = Arc::new(read_trust_store(trust_store)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("the trust store {}: {e}", trust_store.location.display()))?)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| format!("the key store {}: {e}", key_store.location.display()))?;
    Ok(Arc::new(config))
}

/// TLS on the peer links (`sslQuorum=true`, `ssl.quorum.*`): each server
/// accepts links as a TLS server that needs the dialer's certificate, and
/// dials as a TLS client that presents its own, both from the same stores.
#[derive(Clone)]
pub struct PeerTls {
    pub accept: Arc<ServerConfig>,
    pub dial: Arc<ClientConfig>,
}

/// The peer links' TLS configurations from `ssl.quorum.*`.
pub fn peer_configs(ssl: &Ssl) -> Result<PeerTls, String> {
    let accept = server_config(ssl)?;
    let key_store = ssl.key_store.as_ref().ok_or("ssl.quorum.keyStore.location is not set")?;
    let trust_store = ssl.trust_store.as_ref().ok_or("ssl.quorum.trustStore.location is not set")?;
    let (chain, key) = read_key_store(key_store)?;
    let roots = Arc::new(read_trust_store(trust_store)?);
    let provider = Arc::new(provider(&ssl.ciphersuites)?);
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("the trust store {}: {e}", trust_store.location.display()))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(ssl)?)
        .map_err(|e| format!("ssl.quorum.protocol, ssl.quorum.enabledProtocols and ssl.quorum.ciphersuites leave nothing to agree on: {e}"))?;
    let builder = if ssl.hostname_verification {
        builder.with_webpki_verifier(verifier)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
    };
    let dial = builder.with_client_auth_cert(chain, key).map_err(|e| format!("the key store {}: {e}", key_store.location.display()))?;
    Ok(PeerTls { accept, dial: Arc::new(dial) })
}

/// A server certificate verifier that checks the chain to a trusted root
/// but not the name (`ssl.quorum.hostnameVerification=false`).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS configuration that follows its files, as ZooKeeper's
/// `FileChangeWatcher` makes its SSL contexts follow the key and trust
/// stores (`sslQuorumReloadCertFiles` for the peer links): rebuilt by
/// `build` when either file changes. Renewed certificates take effect
/// without a restart; connections already open keep theirs.
pub struct Reloading<T> {
    ssl: Ssl,
    config: T,
    build: fn(&Ssl) -> Result<T, String>,
    /// Each store file's modification time and size when last read.
    stamps: Vec<Option<(SystemTime, u64)>>,
}

impl<T: Clone> Reloading<T> {
    /// Follows the files of `ssl`, whose configuration `build` made as `config` now.
    pub fn new(ssl: &Ssl, config: T, build: fn(&Ssl) -> Result<T, String>) -> Reloading<T> {
        Reloading { stamps: stamps(ssl), ssl: ssl.clone(), config, build }
    }

    /// The configuration for the next connection.
    pub fn current(&self) -> T {
        self.config.clone()
    }

    /// Rebuilds the configuration if a store's file changed: whether it
    /// tried, and how that went (on failure the old one stays).
    pub fn check(&mut self) -> Option<Result<(), String>> {
        let now = stamps(&self.ssl);
        if now == self.stamps {
            return None;
        }
        self.stamps = now;
        Some((self.build)(&self.ssl).map(|config| self.config = config))
    }
}

/// How often the TLS stores' files are looked at for a change.
pub const CERTIFICATE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Rebuilds `reloading` whenever its files change, logging what happened
/// (`what`: whose TLS it is). Runs on the current executor, forever.
pub async fn follow_certificates<T: Clone>(what: String, reloading: std::rc::Rc<std::cell::RefCell<Reloading<T>>>) {
    loop {
        glommio::timer::sleep(CERTIFICATE_CHECK_EVERY).await;
        let checked = reloading.borrow_mut().check();
        match checked {
            Some(Ok(())) => tracing::info!("{what}: TLS key or trust store changed; new connections use the new one"),
            Some(Err(why)) => tracing::warn!("{what}: TLS key or trust store changed but cannot be used ({why}); keeping the previous one"),
            None => {}
        }
    }
}

/// The modification time and size of each store file.
fn stamps(ssl: &Ssl) -> Vec<Option<(SystemTime, u64)>> {
    [&ssl.key_store, &ssl.trust_store]
        .into_iter()
        .flatten()
        .map(|store| std::fs::metadata(&store.location).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

/// What to do with a store keeper cannot read yet, said as a fix.
fn unsupported_store(store: &Store, key: &str) -> String {
    let at = store.location.display();
    match store.kind.as_str() {
        "JKS" => format!(
            "{key} {at} is a JKS store, which keeper does not read: convert it to PKCS12 with `keytool -importkeystore -srckeystore {at} -destkeystore store.p12 -deststoretype PKCS12`, then to PEM with `openssl pkcs12 -in store.p12 -out store.pem -nodes`, and set {key}.type=PEM"
        ),
        other => format!("{key}.type {other} is not a store type keeper reads (PEM, PKCS12)"),
    }
}

/// The server's certificate chain and private key, from one PEM file
/// (ZooKeeper's PEM key store: the certificates and the key together).
fn read_key_store(store: &Store) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let at = store.location.display();
    let bytes = std::fs::read(&store.location).map_err(|e| format!("cannot read ssl.keyStore.location {at}: {e}"))?;
    match store.kind.as_str() {
        "PEM" => {}
        "PKCS12" => {
            let p12 = read_pkcs12(store, &bytes, "ssl.keyStore")?;
            let (_, chain) = p12.private_key_chain().ok_or_else(|| format!("ssl.keyStore.location {at} holds no private key"))?;
            let certs = chain.chain().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            let key = rustls_pki_types::PrivatePkcs8KeyDer::from(chain.key().to_vec());
            return Ok((certs, PrivateKeyDer::Pkcs8(key)));
        }
        _ => return Err(unsupported_store(store, "ssl.keyStore")),
    }
    if bytes.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(format!(
            "the private key in {at} is encrypted, which keeper does not read yet: decrypt it with `openssl pkcs8 -in {at} -out key.pem` and put it with the certificates"
        ));
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<_, _>>().map_err(|e| format!("{at}: a certificate does not parse: {e:?}"))?;
    if chain.is_empty() {
        return Err(format!("ssl.keyStore.location {at} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| format!("ssl.keyStore.location {at} holds no private key that parses: {e:?}"))?;
    Ok((chain, key))
}

/// The certificates trusted to sign clients', from a PEM file.
fn read_trust_store(store: &Store) -> Result<RootCertStore, String> {
    let at = store.location.display();
    let bytes = std::fs::read(&store.location).map_err(|e| format!("cannot read ssl.trustStore.location {at}: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = match store.kind.as_str() {
        "PEM" => CertificateDer::pem_slice_iter(&bytes).collect::<Result<_, _>>().map_err(|e| format!("{at}: a certificate does not parse: {e:?}"))?,
        // Trusted certificates, as keytool stores them, and any key entry's chain.
        "PKCS12" => read_pkcs12(store, &bytes, "ssl.trustStore")?
            .entries()
            .flat_map(|(_, entry)| match entry {
                p12_keystore::KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => k.chain().iter().map(|c| c.as_der().to_vec()).collect(),
                p12_keystore::KeyStoreEntry::Secret(_) => Vec::new(),
            })
            .map(CertificateDer::from)
            .collect(),
        _ => return Err(unsupported_store(store, "ssl.trustStore")),
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| format!("{at}: a certificate cannot be trusted: {e}"))?;
    }
    if roots.is_empty() {
        let hint = if store.kind == "PKCS12" {
            " marked trusted (keytool -importcert marks them; a PKCS12 file openssl exported does not: use a PEM trust store for it)"
        } else {
            ""
        };
        return Err(format!("ssl.trustStore.location {at} holds no certificate{hint}"));
    }
    Ok(roots)
}

/// A PKCS#12 store, opened with its password (none: the empty one).
fn read_pkcs12(store: &Store, bytes: &[u8], key: &str) -> Result<p12_keystore::KeyStore, String> {
    p12_keystore::KeyStore::from_pkcs12(bytes, store.password.as_deref().unwrap_or_default())
        .map_err(|e| format!("{key}.location {} does not open as PKCS12 with {key}.password: {e}", store.location.display()))
}

/// The protocol versions `ssl.protocol` and `ssl.enabledProtocols` allow
/// (ZooKeeper 3.8 defaults to TLSv1.3 and TLSv1.2).
fn versions(ssl: &Ssl) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let version = |name: &str| match name {
        "TLSv1.3" => Ok(vec![&rustls::version::TLS13]),
        "TLSv1.2" => Ok(vec![&rustls::version::TLS12]),
        "TLS" => Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]),
        other => Err(format!("TLS protocol {other:?} is not one keeper speaks (TLSv1.2, TLSv1.3)")),
    };
    let names: Vec<&str> = if ssl.enabled_protocols.is_empty() {
        ssl.protocol.as_deref().map_or(vec!["TLS"], |p| vec![p])
    } else {
        ssl.enabled_protocols.iter().map(String::as_str).collect()
    };
    let mut versions = Vec::new();
    for name in names {
        for v in version(name)? {
            if !versions.iter().any(|known: &&SupportedProtocolVersion| known.version == v.version) {
                versions.push(v);
            }
        }
    }
    Ok(versions)
}

/// ring's provider, with the cipher suites `ssl.ciphersuites` names (all
/// of its own when empty). rustls now prefers aws-lc-rs (for its
/// post-quantum key exchange), which needs cmake to build; ring does not.
#[allow(deprecated)]
fn provider(names: &[String]) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let known: Vec<String> = provider.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
    let mut chosen = Vec::new();
    for name in names {
        let Some(suite) = provider.cipher_suites.iter().find(|s| format!("{:?}", s.suite()) == *name) else {
            return Err(format!("ssl.ciphersuites: {name} is not a cipher suite keeper offers ({})", known.join(", ")));
        };
        chosen.push(*suite);
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// A certificate's subject as Java's `X500Principal.getName()` writes it
/// (RFC 2253: the most specific name first, `CN=client,O=example`): the
/// id of the `x509` ACL scheme.
pub fn x509_subject(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let rdns: Vec<String> = parsed
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type();
                    let name = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry()).map_or_else(|_| oid.to_id_string(), str::to_string);
                    let value = attr.as_str().map_or_else(|_| format!("#{}", hex(attr.as_slice())), escape_rfc2253);
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Escapes an attribute value as RFC 2253 asks.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::new();
    for (i, ch) in value.chars().enumerate() {
        let edge = (i == 0 && (ch == ' ' || ch == '#')) || (i == value.chars().count() - 1 && ch == ' ');
        if edge || matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
