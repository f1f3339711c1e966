//! SASL DIGEST-MD5 for clients, configured as ZooKeeper operators do (a JAAS
//! file with a `Server` section of `user_<name>="password"` entries), against
//! real `keeper serve` processes and real clients: kazoo (pure-sasl) and
//! ZooKeeper's Java client with its JAAS `Client` section. The `sasl` ACL
//! scheme, `superUser`, required SASL (`sessionRequireClientSASLAuth`), and
//! the refusals (a wrong password, Kerberos).

mod common;

use common::raw::RawClient;
use common::{Keeper, four_letter, free_port, temp_dir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SERVER_JAAS: &str =
    "Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    user_super=\"adminsecret\"\n    user_bob=\"bobsecret\";\n};\n";

/// Runs kazoo as `user` with `password` (SASL DIGEST-MD5) against `port`;
/// `body` runs with `zk` started. Its output, and whether it passed.
fn kazoo(port: u16, user: &str, password: &str, body: &str) -> (bool, String) {
    let script = format!(
        "from kazoo.client import KazooClient\nfrom kazoo.security import ACL, Id\nfrom kazoo.exceptions import NoAuthError\nzk = KazooClient(hosts=\"127.0.0.1:{port}\", sasl_options={{\"mechanism\": \"DIGEST-MD5\", \"username\": \"{user}\", \"password\": \"{password}\"}})\nzk.start(timeout=10)\n{body}\nzk.stop()\nprint(\"PASS\")\n"
    );
    let out = Command::new(common::SYSTEM_PYTHON).args(["-c", &script]).output().expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("PASS"), text)
}

fn jaas(dir: &Path) -> String {
    let path = dir.join("jaas.conf");
    std::fs::write(&path, SERVER_JAAS).unwrap();
    path.display().to_string()
}

#[test]
fn sasl_clients_authenticate_and_are_named_by_the_sasl_scheme() {
    let dir = temp_dir("sasl");
    let k = Keeper::start_with("sasl", &format!("java.security.auth.login.config={}\nsuperUser=super", jaas(&dir)), 2);
    let body = "zk.create(\"/bobs\", b\"bob's\", acl=[ACL(31, Id(\"sasl\", \"bob\"))])\nassert zk.get(\"/bobs\")[0] == b\"bob's\"";
    let (ok, out) = kazoo(k.port, "bob", "bobsecret", body);
    assert!(ok, "kazoo authenticates as bob and creates a node only bob may use:\n{out}\n{}", k.log());
    assert!(k.log().contains("authenticated with SASL as bob"), "{}", k.log());

    // Another user may not read it; the super user may; a wrong password gets nowhere.
    let (ok, out) = kazoo(k.port, "super", "adminsecret", "assert zk.get(\"/bobs\")[0] == b\"bob's\"");
    assert!(ok, "superUser reads everything:\n{out}");
    let mut plain = RawClient::connect(k.addr());
    let (reply, _) = plain.call(4, |w| {
        w.ustring("/bobs").boolean(false);
    });
    assert_eq!(reply.header.err, -102, "a client without SASL gets NoAuth");
    let (ok, out) = kazoo(k.port, "bob", "wrong", "zk.get(\"/\")");
    assert!(
        !ok && k.log().contains("SASL authentication failed (wrong password for bob)"),
        "a wrong password fails (kazoo: {}):\n{out}\n{}",
        out.contains("AuthFailed"),
        k.log()
    );

    // ZooKeeper's Java client, with its JAAS Client section.
    let client_jaas = dir.join("client.conf");
    std::fs::write(
        &client_jaas,
        "Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    username=\"bob\"\n    password=\"bobsecret\";\n};\n",
    )
    .unwrap();
    common::require("/usr/share/java/zookeeper.jar");
    let out = Command::new("java")
        .args(["-cp", "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar"])
        .arg(format!("-Djava.security.auth.login.config={}", client_jaas.display()))
        .args(["org.apache.zookeeper.ZooKeeperMain", "-server", &format!("127.0.0.1:{}", k.port), "get", "/bobs"])
        .output()
        .expect("java runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.trim() == "bob's"), "the Java client authenticates as bob and reads:\n{text}\n{}", k.log());
}

#[test]
fn required_sasl_closes_sessions_that_did_not_authenticate() {
    let dir = temp_dir("sasl-required");
    // The JAAS file named as ZooKeeper operators name it: a -D in SERVER_JVMFLAGS.
    let port = free_port();
    let config = dir.join("zoo.cfg");
    std::fs::write(
        &config,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nsessionRequireClientSASLAuth=true\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let _server = common::spawn_serve(&config, &[("SERVER_JVMFLAGS", format!("-Xmx1g -Djava.security.auth.login.config={}", jaas(&dir)))]);
    let log = || std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    assert!(common::eventually(Duration::from_secs(20), || four_letter(port, "srvr").contains("Mode:")), "serving:\n{}", log());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut plain = RawClient::connect(addr);
    let (reply, _) = plain.call(3, |w| {
        w.ustring("/").boolean(false);
    });
    assert_eq!((reply.header.err, reply.header.zxid), (-124, 0), "SessionClosedRequireSaslAuth, as ZooKeeper answers");
    assert!(plain.is_closed(), "and the connection closes");
    let (ok, out) = kazoo(port, "bob", "bobsecret", "zk.create(\"/in\", b\"x\")");
    assert!(ok, "a client that authenticates is served:\n{out}\n{}", log());
}

#[test]
fn a_kerberos_jaas_file_is_refused_with_a_clear_message() {
    let dir = temp_dir("sasl-kerberos");
    let jaas = dir.join("jaas.conf");
    std::fs::write(&jaas, "Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  keyTab=\"/etc/zk.keytab\";\n};\n").unwrap();
    let config = dir.join("zoo.cfg");
    std::fs::write(
        &config,
        format!(
            "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\njava.security.auth.login.config={}\n",
            dir.join("data").display(),
            free_port(),
            jaas.display()
        ),
    )
    .unwrap();
    let (status, out) = common::serve_expecting_exit(&config, Duration::from_secs(20));
    assert!(status.is_some_and(|s| !s.success()) && out.contains("Kerberos (GSSAPI) is not supported"), "{status:?}:\n{out}");
}
