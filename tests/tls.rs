//! TLS on the client port (`secureClientPort` and ZooKeeper's `ssl.*` keys)
//! against real `keeper serve` processes and real clients: `openssl
//! s_client` for the handshake (client certificates needed, wanted or not
//! asked for; protocol versions), kazoo and ZooKeeper's Java client over
//! TLS, and the `x509` ACL scheme naming a client by its certificate's
//! subject. The certificates are made here with openssl.

mod common;

use common::ensemble::Ensemble;
use common::raw::RawClient;
use common::{Keeper, KillOnDrop, free_port, require, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A CA, a server certificate for 127.0.0.1 (with its key, in one PEM key
/// store) and a client certificate for `O=example, CN=client1`, in `dir`.
struct Certificates {
    dir: PathBuf,
}

/// Runs openssl in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Certificates {
    fn make(dir: &Path) -> Certificates {
        require("/usr/bin/openssl");
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        // A server's certificate on the peer links serves both ends of a link.
        std::fs::write(dir.join("quorum.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n").unwrap();
        openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=keeper-test-ca"]);
        let certs = Certificates { dir: dir.to_path_buf() };
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/O=example/CN=client1"), ("quorum", "/CN=keeper-peer")] {
            certs.sign(name, subject, name);
            let pem = [std::fs::read(dir.join(format!("{name}.crt"))).unwrap(), std::fs::read(dir.join(format!("{name}.key"))).unwrap()].concat();
            std::fs::write(dir.join(format!("{name}.pem")), pem).unwrap();
        }
        certs
    }

    /// A new key `<name>.key` and its certificate `<name>.crt` for
    /// `subject`, signed by the CA with the extensions of `<ext>.ext`.
    fn sign(&self, name: &str, subject: &str, ext: &str) {
        let (key, csr, crt, ext) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{ext}.ext"));
        openssl(&self.dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
        let signing = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"];
        openssl(&self.dir, &[&["x509", "-req", "-in", &csr, "-out", &crt, "-extfile", &ext][..], &signing].concat());
    }

    /// Signs a new server certificate for 127.0.0.1 with `cn`, and writes
    /// it with its key as the PKCS12 store `server.p12` (password `secret`),
    /// replacing any there at once (a rename).
    fn server_p12(&self, cn: &str) {
        self.sign("p12", &format!("/CN={cn}"), "server");
        openssl(&self.dir, &["pkcs12", "-export", "-in", "p12.crt", "-inkey", "p12.key", "-out", "next.p12", "-passout", "pass:secret"]);
        std::fs::rename(self.dir.join("next.p12"), self.dir.join("server.p12")).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// zoo.cfg lines for a secure port with these certificates.
    fn config(&self, secure_port: u16, client_auth: &str) -> String {
        format!(
            "secureClientPort={secure_port}\nssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth={client_auth}\n",
            self.path("server.pem"),
            self.path("ca.pem")
        )
    }
}

/// Runs `openssl s_client` against `port`, sending `input` once the
/// handshake is done; its output and errors together.
fn s_client(port: u16, extra: &[&str], input: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
        std::thread::sleep(Duration::from_millis(700));
    }
    let out = KillOnDrop::new(child).wait_with_output();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn tls_clients_need_a_certificate_and_are_named_by_it_for_x509_acls() {
    let dir = temp_dir("tls-need");
    let certs = Certificates::make(&dir);
    let secure = free_port();
    let k = Keeper::start_with("tls-need", &certs.config(secure, "need"), 2);
    let ca = certs.path("ca.pem");
    let (cert, key) = (certs.path("client.crt"), certs.path("client.key"));

    // The handshake, with and without the client's certificate.
    let with_cert = s_client(secure, &["-CAfile", &ca, "-cert", &cert, "-key", &key, "-verify_return_error", "-quiet"], "ruok");
    assert!(with_cert.contains("imok"), "a four-letter word over TLS is answered:\n{with_cert}");
    let without = s_client(secure, &["-CAfile", &ca, "-quiet"], "ruok");
    assert!(!without.contains("imok") && without.contains("alert"), "ssl.clientAuth=need refuses a client without a certificate:\n{without}");
    assert!(k.log().contains("TLS handshake failed: peer sent no certificates"), "{}", k.log());

    // kazoo over TLS creates a node only its certificate may read; a plaintext client may not.
    let script = format!(
        r#"
from kazoo.client import KazooClient
from kazoo.security import ACL, Id
from kazoo.exceptions import NoAuthError
zk = KazooClient(hosts="127.0.0.1:{secure}", use_ssl=True, ca="{ca}", certfile="{cert}", keyfile="{key}", verify_certs=True)
zk.start(timeout=15)
zk.create("/tls-x509", b"secret", acl=[ACL(31, Id("x509", "CN=client1,O=example"))])
assert zk.get("/tls-x509")[0] == b"secret"
zk.stop()
plain = KazooClient(hosts="127.0.0.1:{plain}")
plain.start(timeout=15)
try:
    plain.get("/tls-x509")
    raise SystemExit("a plaintext client read a node only client1 may read")
except NoAuthError:
    pass
plain.stop()
print("PASS")
"#,
        plain = k.port
    );
    let out = Command::new(common::SYSTEM_PYTHON).args(["-c", &script]).output().expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("PASS"), "kazoo over TLS:\n{text}\n{}", k.log());

    // ZooKeeper's Java client, with its PEM key and trust stores, reads it as client1.
    require("/usr/share/java/zookeeper.jar");
    let classpath = ["zookeeper.jar", "slf4j-api.jar", "netty-resolver.jar", "netty-codec.jar"].map(|j| format!("/usr/share/java/{j}")).join(":");
    let out = Command::new("java")
        .args(["-cp", &classpath])
        .arg("-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty")
        .arg("-Dzookeeper.client.secure=true")
        .arg(format!("-Dzookeeper.ssl.keyStore.location={}", certs.path("client.pem")))
        .arg("-Dzookeeper.ssl.keyStore.type=PEM")
        .arg(format!("-Dzookeeper.ssl.trustStore.location={ca}"))
        .arg("-Dzookeeper.ssl.trustStore.type=PEM")
        .args(["org.apache.zookeeper.ZooKeeperMain", "-server", &format!("127.0.0.1:{secure}"), "get", "/tls-x509"])
        .output()
        .expect("java runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.trim() == "secret"), "the Java client reads over TLS as client1:\n{text}");
}

#[test]
fn a_secure_port_alone_serves_tls_only_with_the_protocols_asked_for() {
    let dir = temp_dir("tls-only");
    let certs = Certificates::make(&dir);
    let secure = free_port();
    let config = dir.join("zoo.cfg");
    std::fs::write(
        &config,
        format!(
            "tickTime=500\ndataDir={}\n4lw.commands.whitelist=*\nsecureClientPortAddress=127.0.0.1\nssl.protocol=TLSv1.2\n{}",
            dir.join("data").display(),
            certs.config(secure, "want")
        ),
    )
    .unwrap();
    let _server = common::spawn_serve(&config, &[]);
    let ca = certs.path("ca.pem");
    // ssl.clientAuth=want: a client without a certificate gets in.
    let serving = common::eventually(Duration::from_secs(20), || s_client(secure, &["-CAfile", &ca, "-quiet", "-tls1_2"], "ruok").contains("imok"));
    let log = || std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    assert!(serving, "TLS 1.2 without a client certificate is served:\n{}", log());
    assert!(log().contains(&format!("serving on 127.0.0.1:{secure} (TLS) with")) && !log().contains(":2181"), "no plaintext port:\n{}", log());
    let tls13 = s_client(secure, &["-CAfile", &ca, "-quiet", "-tls1_3"], "ruok");
    assert!(!tls13.contains("imok"), "ssl.protocol=TLSv1.2 refuses TLS 1.3:\n{tls13}");
}

#[test]
fn stores_keeper_cannot_read_are_refused_with_the_fix() {
    let dir = temp_dir("tls-stores");
    let certs = Certificates::make(&dir);
    std::fs::copy(dir.join("server.pem"), dir.join("server.jks")).unwrap();
    certs.server_p12("stores");
    let base = format!("tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n", dir.join("data").display(), free_port());
    for (extra, expected) in [
        (format!("secureClientPort={}\nssl.keyStore.location={}\nssl.clientAuth=none\n", free_port(), certs.path("server.jks")), "keytool -importkeystore"),
        (format!("secureClientPort={}\n", free_port()), "ssl.keyStore.location is not"),
        (format!("secureClientPort={}\nssl.keyStore.location={}\n", free_port(), certs.path("server.pem")), "ssl.trustStore.location is not set"),
        (
            format!("secureClientPort={}\nssl.keyStore.location={}\nssl.clientAuth=none\nssl.ciphersuites=TLS_NOPE\n", free_port(), certs.path("server.pem")),
            "TLS_NOPE is not a cipher suite",
        ),
        (
            format!("secureClientPort={}\nssl.keyStore.location={}\nssl.keyStore.password=wrong\nssl.clientAuth=none\n", free_port(), certs.path("server.p12")),
            "does not open as PKCS12 with ssl.keyStore.password",
        ),
    ] {
        let config = dir.join("bad.cfg");
        std::fs::write(&config, format!("{base}{extra}")).unwrap();
        let (status, out) = common::serve_expecting_exit(&config, Duration::from_secs(20));
        assert!(status.is_some_and(|s| !s.success()) && out.contains(expected), "{extra}: expected {expected:?}, got ({status:?}):\n{out}");
    }
}

#[test]
fn pkcs12_stores_are_read_and_a_renewed_certificate_is_served_without_a_restart() {
    let dir = temp_dir("tls-p12");
    let certs = Certificates::make(&dir);
    certs.server_p12("first");
    // A trust store as Java makes one (keytool marks its certificates trusted).
    require("/usr/bin/keytool");
    let out = Command::new("keytool")
        .args(["-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "trust.p12", "-storetype", "PKCS12", "-storepass", "secret"])
        .current_dir(&dir)
        .output()
        .expect("keytool runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secure = free_port();
    let k = Keeper::start_with(
        "tls-p12",
        &format!(
            "secureClientPort={secure}\nssl.keyStore.location={}\nssl.keyStore.password=secret\nssl.trustStore.location={}\nssl.trustStore.password=secret\n",
            certs.path("server.p12"),
            certs.path("trust.p12")
        ),
        1,
    );
    let ca = certs.path("ca.pem");
    let (cert, key) = (certs.path("client.crt"), certs.path("client.key"));
    let serves = |cn: &str| {
        let out = s_client(secure, &["-CAfile", &ca, "-cert", &cert, "-key", &key, "-verify_return_error"], "ruok");
        (out.contains("imok") && (out.contains(&format!("CN = {cn}")) || out.contains(&format!("CN={cn}"))), out)
    };
    let (first, out) = serves("first");
    assert!(first, "the PKCS12 store's certificate is served:\n{out}");
    certs.server_p12("renewed");
    let renewed = common::eventually(Duration::from_secs(10), || serves("renewed").0);
    assert!(renewed, "the renewed certificate is served without a restart:\n{}", k.log());
    assert!(k.log().contains("TLS key or trust store changed; new connections use the new one"), "{}", k.log());
}

/// Writes `bytes` to `path` at once (a rename), as a certificate renewal does.
fn replace_file(path: &Path, bytes: &[u8]) {
    let next = path.with_extension("next");
    std::fs::write(&next, bytes).unwrap();
    std::fs::rename(next, path).unwrap();
}

#[test]
fn an_ensemble_with_ssl_quorum_links_through_tls_and_refuses_plaintext_peers() {
    let dir = temp_dir("tls-quorum");
    Certificates::make(&dir);
    let (key, trust) = (dir.join("peer-key.pem"), dir.join("peer-trust.pem"));
    std::fs::copy(dir.join("quorum.pem"), &key).unwrap();
    std::fs::copy(dir.join("ca.pem"), &trust).unwrap();
    let extra = format!("sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n", key.display(), trust.display());
    let mut e = Ensemble::start_each("tls-quorum", 3, &|_| extra.clone());
    let leader = e.leader();
    let follower = (leader + 1) % 3;
    let mut writer = RawClient::connect(e.servers[follower].addr());
    assert_eq!(writer.create("/over-tls", b"replicated", 0), Some(0), "a write through a follower commits over TLS links");
    let other = (leader + 2) % 3;
    let mut reader = RawClient::connect(e.servers[other].addr());
    reader.sync("/over-tls");
    assert_eq!(reader.get("/over-tls").as_deref(), Some(&b"replicated"[..]));
    // A peer that does not speak TLS is refused.
    {
        use std::io::Write;
        let mut plain = std::net::TcpStream::connect(("127.0.0.1", e.servers[other].peer_port)).unwrap();
        let _ = plain.write_all(b"not a TLS client hello, not a keeper hello either");
    }
    let refused = common::eventually(Duration::from_secs(10), || e.servers[other].log().contains("refusing the peer link: TLS handshake"));
    assert!(refused, "{}", e.servers[other].log());

    // A move to a new CA while the ensemble runs: trust both, take a
    // certificate from the new one, then trust only the new one. Each step
    // is picked up by every server without a restart.
    openssl(&dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca2.key", "-out", "ca2.pem", "-days", "2", "-subj", "/CN=keeper-test-ca-2"]);
    openssl(&dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "peer2.key", "-out", "peer2.csr", "-subj", "/CN=keeper-peer-2"]);
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "peer2.csr",
            "-out",
            "peer2.crt",
            "-extfile",
            "quorum.ext",
            "-CA",
            "ca2.pem",
            "-CAkey",
            "ca2.key",
            "-CAcreateserial",
            "-days",
            "2",
        ],
    );
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let reloaded = |e: &Ensemble, times: usize| {
        common::eventually(Duration::from_secs(10), || {
            e.servers.iter().all(|s| s.log().matches("peer links: TLS key or trust store changed; new connections use the new one").count() >= times)
        })
    };
    replace_file(&trust, &[read("ca.pem"), read("ca2.pem")].concat());
    assert!(reloaded(&e, 1), "every server trusts both CAs:\n{}", e.logs());
    replace_file(&key, &[read("peer2.crt"), read("peer2.key")].concat());
    assert!(reloaded(&e, 2), "every server holds the new CA's certificate:\n{}", e.logs());
    replace_file(&trust, &read("ca2.pem"));
    assert!(reloaded(&e, 3), "every server trusts only the new CA:\n{}", e.logs());
    // A restarted server has only the new CA's certificate and trust: the
    // others reach it and it reaches them only with what they reloaded.
    e.kill(other);
    e.restart(other);
    let mut late = RawClient::connect(e.servers[other].addr());
    assert_eq!(late.create("/after-renewal", b"x", 0), Some(0), "a write through the restarted server commits:\n{}", e.logs());
    late.sync("/over-tls");
    assert_eq!(late.get("/over-tls").as_deref(), Some(&b"replicated"[..]));
}
