//! `keeper import`: data written by Apache ZooKeeper 3.8 (Debian's package,
//! a real server process, real clients) is imported and served by keeper
//! with every node field equal, and the live session still owning its
//! ephemeral; a corrupt ZooKeeper file is reported with its name and offset
//! and leaves nothing behind.

mod common;

use common::{KillOnDrop, four_letter, temp_dir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use zookeeper_client as zk;

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const OPEN: zk::CreateOptions<'static> = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// A ZooKeeper 3.8 server on loopback, killed when dropped.
struct ZooKeeper {
    _process: KillOnDrop,
    port: u16,
}

impl ZooKeeper {
    /// Starts ZooKeeper with snapshots every few dozen transactions, so
    /// that its data is a snapshot and the logs after it. `quorum`: as an
    /// ensemble of one (`standaloneEnabled=false`), whose zxids have an
    /// epoch, as every ensemble's do; else standalone (epoch 0).
    /// `compression`: zookeeper.snapshot.compression.method (gz, snappy).
    fn start(dir: &Path, quorum: bool, compression: &str) -> ZooKeeper {
        common::require(ZK_JAR);
        let ports = common::free_ports(3);
        let (port, data) = (ports[0], dir.join("zk"));
        std::fs::create_dir_all(&data).unwrap();
        let mut cfg_text = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nsnapCount=40\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
            data.display()
        );
        if quorum {
            std::fs::write(data.join("myid"), "1\n").unwrap();
            cfg_text += &format!("standaloneEnabled=false\nserver.1=127.0.0.1:{}:{};127.0.0.1:{port}\n", ports[1], ports[2]);
        }
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, cfg_text).unwrap();
        let log = std::fs::File::create(dir.join("zookeeper.log")).unwrap();
        let child = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
            .arg(format!("/etc/zookeeper/conf:{ZK_JAR}"))
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .arg(format!("-Dzookeeper.snapshot.compression.method={compression}"))
            .args(["-Dzookeeper.extendedTypesEnabled=true", "org.apache.zookeeper.server.quorum.QuorumPeerMain"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("java starts ZooKeeper");
        let zk = ZooKeeper { _process: KillOnDrop::new(child), port };
        assert!(common::eventually(Duration::from_secs(60), || four_letter(port, "srvr").contains("Mode:")), "ZooKeeper 3.8 did not start");
        zk
    }

    fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Every node's data, stat and ACL, by path.
type Nodes = BTreeMap<String, (Vec<u8>, zk::Stat, Vec<zk::Acl>)>;

async fn walk(c: &zk::Client) -> Nodes {
    let mut nodes = Nodes::new();
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = c.get_data(&path).await.unwrap_or_else(|e| panic!("get {path}: {e}"));
        let (acl, _) = c.get_acl(&path).await.unwrap();
        for child in c.list_children(&path).await.unwrap() {
            todo.push(if path == "/" { format!("/{child}") } else { format!("{path}/{child}") });
        }
        nodes.insert(path, (data, stat, acl));
    }
    nodes
}

/// Runs `keeper import`; its status and output.
fn import(zk_data: &Path, data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keeper"))
        .args(["import", "--zookeeper-data"])
        .arg(zk_data)
        .arg("--data")
        .arg(data)
        .output()
        .expect("keeper import runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Writes every kind of node through a real client; returns the session
/// that stays open (and owns an ephemeral).
async fn populate(zk_server: &ZooKeeper) -> zk::Client {
    let c = zk::Client::connector().with_session_timeout(Duration::from_secs(30)).connect(&zk_server.connect_string()).await.unwrap();
    c.create("/app", b"config-v1", &OPEN).await.unwrap();
    c.set_data("/app", b"config-v2", None).await.unwrap();
    let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    for _ in 0..5 {
        c.create("/app/seq-", b"", &sequential).await.unwrap();
    }
    c.delete("/app/seq-0000000003", None).await.unwrap();
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    c.create("/app/eph", b"mine", &ephemeral).await.unwrap();
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    c.create("/app/cont", b"", &container).await.unwrap();
    c.create("/app/cont/child", b"c", &OPEN).await.unwrap();
    let ttl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_secs(3600));
    c.create("/app/ttl", b"t", &ttl).await.unwrap();
    let mut multi = c.new_multi_writer();
    multi.add_create("/app/m1", b"x", &OPEN).unwrap();
    multi.add_set_data("/app", b"config-v3", Some(1)).unwrap();
    multi.commit().await.unwrap();
    let read_only = [zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())];
    c.create("/app/locked", b"r", &OPEN).await.unwrap();
    c.set_acl("/app/locked", &read_only, None).await.unwrap();
    let alice = zk::Client::connector().with_auth("digest", b"alice:secret").connect(&zk_server.connect_string()).await.unwrap();
    alice.create("/secure", b"s", &zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all())).await.unwrap();
    // A session that ends: its ephemeral is gone from the data.
    let passing = zk::Client::connector().with_session_timeout(Duration::from_secs(4)).connect(&zk_server.connect_string()).await.unwrap();
    passing.create("/app/gone", b"", &ephemeral).await.unwrap();
    drop(passing);
    for _ in 0..100 {
        if c.check_stat("/app/gone").await.unwrap().is_none() {
            break;
        }
        async_io::Timer::after(Duration::from_millis(200)).await;
    }
    // Enough writes for several snapshots and logs (snapCount=40).
    c.create("/bulk", b"", &OPEN).await.unwrap();
    for i in 0..150 {
        c.create(&format!("/bulk/n{i}"), format!("value {i}").as_bytes(), &OPEN).await.unwrap();
    }
    // A quota, whose usage keeper recounts as ZooKeeper does at start-up.
    c.mkdir("/zookeeper/quota/bulk", &OPEN).await.unwrap();
    c.create("/zookeeper/quota/bulk/zookeeper_limits", b"count=1000,bytes=-1", &OPEN).await.unwrap();
    c.create("/zookeeper/quota/bulk/zookeeper_stats", b"count=0,bytes=0", &OPEN).await.unwrap();
    c
}

#[asyncs::test]
async fn an_ensembles_data_with_snappy_snapshots_is_served_with_every_field_equal() {
    round_trip("import-snappy", true, "snappy").await;
}

#[asyncs::test]
async fn a_standalone_servers_data_with_gzip_snapshots_is_served_with_every_field_equal() {
    round_trip("import-gz", false, "gz").await;
}

/// ZooKeeper writes every kind of node and is killed; keeper serves the
/// imported data with every field equal, and goes on from it.
async fn round_trip(name: &str, quorum: bool, compression: &str) {
    let dir = temp_dir(name);
    let zk_server = ZooKeeper::start(&dir, quorum, compression);
    let client = populate(&zk_server).await;
    let alice = zk::Client::connector().with_auth("digest", b"alice:secret").connect(&zk_server.connect_string()).await.unwrap();
    let before = walk(&alice).await;
    assert!(!before.contains_key("/app/gone"), "the closed session's ephemeral is gone in ZooKeeper");
    let session = client.session().clone();
    // kill -9: the last writes are only in ZooKeeper's log, and the session is live.
    drop(zk_server);
    let snapshots =
        std::fs::read_dir(dir.join("zk/version-2")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("snapshot.")).count();
    assert!(snapshots >= 2, "ZooKeeper took several snapshots ({snapshots})");

    let imported = dir.join("keeper");
    let (ok, out) = import(&dir.join("zk"), &imported);
    assert!(ok, "keeper import failed:\n{out}");
    eprintln!("{out}");
    assert!(out.contains("transactions from"), "{out}");
    let k = common::Keeper::start_with_data(&format!("{name}-serve"), "", &imported.join("keeper-v1"));
    let again = zk::Client::connector().with_auth("digest", b"alice:secret").connect(&k.connect_string()).await.unwrap();
    let after = walk(&again).await;
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "the same paths");
    for (path, (data, stat, acl)) in &before {
        let (data2, stat2, acl2) = &after[path];
        assert_eq!((data, stat, acl), (data2, stat2, acl2), "node {path}");
    }
    let quota = &after["/zookeeper/quota/bulk/zookeeper_stats"].0;
    assert_eq!(String::from_utf8_lossy(quota), format!("count=151,bytes={}", (0..150).map(|i| format!("value {i}").len()).sum::<usize>()));

    // The live session re-attaches with ZooKeeper's id and password, and still owns its ephemeral.
    let resumed = zk::Client::connector().with_session(session.clone()).connect(&k.connect_string()).await.expect("the imported session re-attaches");
    assert_eq!(resumed.session_id(), session.id());
    let (_, eph) = resumed.get_data("/app/eph").await.unwrap();
    assert_eq!(eph.ephemeral_owner, session.id().0);
    // Sequence numbers and zxids go on from ZooKeeper's.
    let (app_data, app, _) = &after["/app"];
    assert_eq!(app_data, b"config-v3");
    let (_, created) = resumed.create("/app/seq-", b"", &zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all())).await.unwrap();
    assert_eq!(created.into_i64(), i64::from((app.cversion + app.num_children) / 2), "the next sequence number");
    let newest = before.values().map(|(_, s, _)| s.mzxid.max(s.pzxid)).max().unwrap();
    let (_, stat) = resumed.get_data("/app").await.unwrap();
    assert!(stat.pzxid > newest, "a new write's zxid {:#x} follows ZooKeeper's last {newest:#x}", stat.pzxid);
    drop(client);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[asyncs::test]
async fn a_corrupt_zookeeper_log_is_named_with_its_offset_and_nothing_is_written() {
    let dir = temp_dir("import-corrupt");
    let zk_server = ZooKeeper::start(&dir, false, "");
    let c = zk::Client::connector().connect(&zk_server.connect_string()).await.unwrap();
    for i in 0..20 {
        c.create(&format!("/n{i}"), b"some data", &OPEN).await.unwrap();
    }
    drop(zk_server);
    let logs: Vec<PathBuf> = std::fs::read_dir(dir.join("zk/version-2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log."))
        .collect();
    let log = logs.iter().max().expect("ZooKeeper wrote a log");
    let mut bytes = std::fs::read(log).unwrap();
    // Inside the first record's payload: after the 16-byte header, the checksum and the length.
    bytes[16 + 12 + 10] ^= 0xFF;
    std::fs::write(log, &bytes).unwrap();
    let target = dir.join("keeper");
    let (ok, out) = import(&dir.join("zk"), &target);
    assert!(!ok, "a corrupt log must stop the import:\n{out}");
    assert!(out.contains(&log.display().to_string()) && out.contains("at offset 16") && out.contains("checksum mismatch"), "{out}");
    assert!(!target.exists(), "nothing is left behind: {}", target.display());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_import_never_overwrites_keeper_data() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zookeeper-3.8");
    let dir = temp_dir("import-twice");
    let (ok, out) = import(&fixture, &dir);
    assert!(ok, "the fixture (ZooKeeper 3.8's files) imports:\n{out}");
    let snapshot = std::fs::read_dir(dir.join("keeper-v1")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("snapshot."));
    let before = std::fs::read(snapshot.as_ref().expect("a snapshot was written")).unwrap();
    let (ok, out) = import(&fixture, &dir);
    assert!(!ok && out.contains("already holds keeper data"), "a second import into the same directory is refused:\n{out}");
    assert_eq!(std::fs::read(snapshot.unwrap()).unwrap(), before, "and changes nothing");
    std::fs::remove_dir_all(&dir).unwrap();
}
