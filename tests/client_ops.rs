//! ZooKeeper semantics through a third-party client: the Rust
//! `zookeeper-client` crate, over real sockets, against a real `keeper serve`.

mod common;

use common::{Keeper, four_letter};
use std::time::Duration;
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
const SEQUENTIAL: zk::CreateOptions<'static> = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
const CONTAINER: zk::CreateOptions<'static> = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());

async fn client(k: &Keeper) -> zk::Client {
    zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(&k.connect_string()).await.expect("client connects")
}

/// Waits for a future (an event, a condition loop) with a deadline.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    let deadline = async {
        async_io::Timer::after(Duration::from_secs(10)).await;
        panic!("no event within 10 s");
    };
    futures_lite::future::or(fut, deadline).await
}

#[asyncs::test]
async fn create_get_set_delete_and_stat_fields() {
    let k = Keeper::start("crud");
    let c = client(&k).await;
    let (stat, _) = c.create("/a", b"hello", &OPEN).await.unwrap();
    assert_eq!((stat.version, stat.cversion, stat.data_length, stat.num_children), (0, 0, 5, 0));
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.czxid, stat.pzxid);
    let (data, got) = c.get_data("/a").await.unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(got, stat);
    assert_eq!(c.create("/a", b"", &OPEN).await.unwrap_err(), zk::Error::NodeExists);
    assert_eq!(c.set_data("/a", b"v1", Some(7)).await.unwrap_err(), zk::Error::BadVersion);
    let set = c.set_data("/a", b"v1", Some(0)).await.unwrap();
    assert_eq!(set.version, 1);
    assert!(set.mzxid > stat.mzxid);
    assert_eq!(set.czxid, stat.czxid);
    c.create("/a/b", b"", &OPEN).await.unwrap();
    assert_eq!(c.delete("/a", None).await.unwrap_err(), zk::Error::NotEmpty);
    let parent = c.check_stat("/a").await.unwrap().unwrap();
    assert_eq!((parent.num_children, parent.cversion), (1, 1));
    c.delete("/a/b", Some(0)).await.unwrap();
    let parent = c.check_stat("/a").await.unwrap().unwrap();
    assert_eq!((parent.num_children, parent.cversion), (0, 2), "cversion counts creates and deletes");
    c.delete("/a", None).await.unwrap();
    assert_eq!(c.get_data("/a").await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(c.check_stat("/a").await.unwrap(), None);
    assert_eq!(c.create("/missing/child", b"", &OPEN).await.unwrap_err(), zk::Error::NoNode);
    let mut root = c.list_children("/").await.unwrap();
    root.sort();
    assert_eq!(root, vec!["zookeeper"]);
}

#[asyncs::test]
async fn sequential_suffix_uses_creates_not_cversion() {
    let k = Keeper::start("sequential");
    let c = client(&k).await;
    c.create("/q", b"", &OPEN).await.unwrap();
    let (_, s0) = c.create("/q/n-", b"", &SEQUENTIAL).await.unwrap();
    let (_, s1) = c.create("/q/n-", b"", &SEQUENTIAL).await.unwrap();
    assert_eq!((s0.into_i64(), s1.into_i64()), (0, 1));
    c.delete(&format!("/q/n-{s0}"), None).await.unwrap();
    c.delete(&format!("/q/n-{s1}"), None).await.unwrap();
    let (_, s2) = c.create("/q/x-", b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(s2.into_i64(), 2, "the counter never rewinds");
    let mut children = c.list_children("/q").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["x-0000000002"]);
    assert_eq!(c.check_stat("/q").await.unwrap().unwrap().cversion, 5);
}

#[asyncs::test]
async fn ephemerals_belong_to_their_session() {
    let k = Keeper::start("ephemeral");
    let owner = client(&k).await;
    let other = client(&k).await;
    let (stat, _) = owner.create("/e", b"", &EPHEMERAL).await.unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(owner.create("/e/child", b"", &OPEN).await.unwrap_err(), zk::Error::NoChildrenForEphemerals);
    assert_eq!(owner.list_ephemerals("/").await.unwrap(), vec!["/e"]);
    assert!(other.list_ephemerals("/").await.unwrap().is_empty());
    let (_, deleted) = other.check_and_watch_stat("/e").await.unwrap();
    drop(owner);
    let event = within(deleted.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeDeleted);
    assert_eq!(other.check_stat("/e").await.unwrap(), None);
}

#[asyncs::test]
async fn one_shot_watches_fire_once_with_the_right_event() {
    let k = Keeper::start("watches");
    let w = client(&k).await;
    let c = client(&k).await;
    let (_, exists) = w.check_and_watch_stat("/w").await.unwrap();
    c.create("/w", b"", &OPEN).await.unwrap();
    assert_eq!(within(exists.changed()).await.event_type, zk::EventType::NodeCreated);
    let (_, _, data) = w.get_and_watch_data("/w").await.unwrap();
    let (_, children) = w.list_and_watch_children("/w").await.unwrap();
    c.create("/w/c", b"", &OPEN).await.unwrap();
    assert_eq!(within(children.changed()).await.event_type, zk::EventType::NodeChildrenChanged);
    c.set_data("/w", b"x", None).await.unwrap();
    let ev = within(data.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (zk::EventType::NodeDataChanged, "/w"));
    // Event before reply: after our own write returns, a watch on it has fired.
    let (_, _, mine) = c.get_and_watch_data("/w/c").await.unwrap();
    c.delete("/w/c", None).await.unwrap();
    assert_eq!(within(mine.changed()).await.event_type, zk::EventType::NodeDeleted);
}

#[asyncs::test]
async fn persistent_and_recursive_watches() {
    let k = Keeper::start("persistent");
    let w = client(&k).await;
    let c = client(&k).await;
    c.create("/p", b"", &OPEN).await.unwrap();
    let mut persistent = w.watch("/p", zk::AddWatchMode::Persistent).await.unwrap();
    let mut recursive = w.watch("/p", zk::AddWatchMode::PersistentRecursive).await.unwrap();
    c.create("/p/a", b"", &OPEN).await.unwrap();
    c.set_data("/p/a", b"1", None).await.unwrap();
    c.set_data("/p", b"2", None).await.unwrap();
    let ev = within(persistent.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (zk::EventType::NodeChildrenChanged, "/p"));
    let ev = within(persistent.changed()).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (zk::EventType::NodeDataChanged, "/p"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let ev = within(recursive.changed()).await;
        seen.push((ev.event_type, ev.path));
    }
    assert_eq!(
        seen,
        vec![
            (zk::EventType::NodeCreated, "/p/a".to_string()),
            (zk::EventType::NodeDataChanged, "/p/a".to_string()),
            (zk::EventType::NodeDataChanged, "/p".to_string())
        ]
    );
}

#[asyncs::test]
async fn multi_is_all_or_nothing() {
    let k = Keeper::start("multi");
    let c = client(&k).await;
    let mut ok = c.new_multi_writer();
    ok.add_create("/m", b"a", &OPEN).unwrap();
    ok.add_create("/m/s-", b"", &SEQUENTIAL).unwrap();
    ok.add_set_data("/m", b"b", Some(0)).unwrap();
    ok.add_check_version("/m", 1).unwrap();
    let results = ok.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(&results[1], zk::MultiWriteResult::Create { path, .. } if path == "/m/s-0000000000"));
    let before = c.check_stat("/m").await.unwrap().unwrap();
    let mut bad = c.new_multi_writer();
    bad.add_create("/m/new", b"", &OPEN).unwrap();
    bad.add_delete("/m", Some(99)).unwrap();
    bad.add_set_data("/m", b"c", None).unwrap();
    match bad.commit().await.unwrap_err() {
        zk::MultiWriteError::OperationFailed { index, source } => {
            assert_eq!((index, source), (1, zk::Error::BadVersion))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.check_stat("/m/new").await.unwrap(), None, "nothing of a failed multi is applied");
    let after = c.check_stat("/m").await.unwrap().unwrap();
    assert_eq!((after.version, after.cversion), (before.version, before.cversion));
    let (_, s) = c.create("/m/s-", b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(s.into_i64(), 1, "a failed multi does not advance the sequence");
}

#[asyncs::test]
async fn acls_and_digest_auth() {
    let k = Keeper::start_with("acl", "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=", 1);
    let alice = zk::Client::connector().with_auth("digest", b"alice:secret").connect(&k.connect_string()).await.unwrap();
    let anon = client(&k).await;
    let creator_all = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    alice.create("/secret", b"s", &creator_all).await.unwrap();
    let (acl, _) = alice.get_acl("/secret").await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].scheme(), "digest");
    assert!(acl[0].id().starts_with("alice:"));
    assert_eq!(anon.get_data("/secret").await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(anon.set_data("/secret", b"x", None).await.unwrap_err(), zk::Error::NoAuth);
    assert!(anon.check_stat("/secret").await.unwrap().is_some(), "exists has no ACL check");
    assert_eq!(anon.create("/secret/c", b"", &OPEN).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(anon.create("/x", b"", &creator_all).await.unwrap_err(), zk::Error::InvalidAcl, "auth scheme without identities");
    anon.auth("digest", b"alice:secret").await.unwrap();
    assert_eq!(anon.get_data("/secret").await.unwrap().0, b"s");
    let sup = zk::Client::connector().with_auth("digest", b"super:test").connect(&k.connect_string()).await.unwrap();
    sup.set_data("/secret", b"by super", None).await.unwrap();
    let users = alice.list_auth_users().await.unwrap();
    assert!(users.contains(&zk::AuthUser::new("digest", "alice")), "{users:?}");
    // READ-only for the world, full for alice: others cannot delete children or change the ACL.
    let read_only = [zk::Acl::new(zk::Permission::READ, zk::AuthId::new("world", "anyone"))];
    let ro = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&read_only));
    alice.create("/ro", b"", &ro).await.unwrap();
    assert_eq!(alice.create("/ro/c", b"", &OPEN).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(alice.set_acl("/ro", &zk::Acls::anyone_all(), None).await.unwrap_err(), zk::Error::NoAuth);
}

#[asyncs::test]
async fn ip_acl_matches_loopback_cidr() {
    let k = Keeper::start("ip-acl");
    let c = client(&k).await;
    let loopback = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "127.0.0.0/8"))];
    let elsewhere = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "10.0.0.0/8"))];
    c.create("/mine", b"m", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&loopback))).await.unwrap();
    c.create("/theirs", b"t", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&elsewhere))).await.unwrap();
    assert_eq!(c.get_data("/mine").await.unwrap().0, b"m");
    assert_eq!(c.get_data("/theirs").await.unwrap_err(), zk::Error::NoAuth);
    let bad = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "1.2.3.4/40"))];
    assert_eq!(c.create("/bad", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&bad))).await.unwrap_err(), zk::Error::InvalidAcl);
}

#[asyncs::test]
async fn containers_and_ttl_nodes_are_reaped() {
    let k = Keeper::start_with("reaper", "znode.container.checkIntervalMs=200", 1);
    let c = client(&k).await;
    c.create("/box", b"", &CONTAINER).await.unwrap();
    c.create("/never-used", b"", &CONTAINER).await.unwrap();
    c.create("/box/item", b"", &OPEN).await.unwrap();
    c.delete("/box/item", None).await.unwrap();
    let ttl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_millis(300));
    let (stat, _) = c.create("/ttl", b"", &ttl).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "TTL nodes show no owner");
    c.create("/ttl-kept", b"", &ttl).await.unwrap();
    c.create("/ttl-kept/child", b"", &OPEN).await.unwrap();
    within(async {
        while c.check_stat("/box").await.unwrap().is_some() || c.check_stat("/ttl").await.unwrap().is_some() {
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(c.check_stat("/never-used").await.unwrap().is_some(), "a never-used container stays");
    assert!(c.check_stat("/ttl-kept").await.unwrap().is_some(), "a TTL node with children stays");
}

#[asyncs::test]
async fn reads_sync_counts_and_whoami() {
    let k = Keeper::start("reads");
    let c = client(&k).await;
    c.create("/r", b"", &OPEN).await.unwrap();
    c.create("/r/a", b"", &OPEN).await.unwrap();
    c.create("/r/a/b", b"", &OPEN).await.unwrap();
    assert_eq!(c.count_descendants_number("/r").await.unwrap(), 2);
    c.sync("/r").await.unwrap();
    let (children, stat) = c.get_children("/r").await.unwrap();
    assert_eq!((children, stat.num_children), (vec!["a".to_string()], 1));
    let mut reader = c.new_multi_reader();
    reader.add_get_data("/r/a").unwrap();
    reader.add_get_children("/r").unwrap();
    reader.add_get_data("/nope").unwrap();
    let results = reader.commit().await.unwrap();
    assert!(matches!(&results[2], zk::MultiReadResult::Error { err } if *err == zk::Error::NoNode), "{results:?}");
    let users = c.list_auth_users().await.unwrap();
    assert_eq!(users, vec![zk::AuthUser::new("ip", "127.0.0.1")]);
}

#[asyncs::test]
async fn sessions_expire_and_take_their_ephemerals() {
    // tickTime=500: the minimum session timeout is 1 s.
    let k = Keeper::start("expiry");
    let watcher = client(&k).await;
    let short = zk::Client::connector().with_session_timeout(Duration::from_millis(1000)).with_detached().connect(&k.connect_string()).await.unwrap();
    short.create("/eph", b"", &EPHEMERAL).await.unwrap();
    let (_, gone) = watcher.check_and_watch_stat("/eph").await.unwrap();
    // Stop the client's pings without closing the session: kill its connection by
    // re-attaching the session elsewhere, then dropping that connection.
    let session = short.into_session();
    let raw = common::raw::RawClient::attach(k.addr(), session.id().0, &keeper::core::session::password(session.id().0), 1000).expect("re-attach");
    drop(raw);
    assert_eq!(within(gone.changed()).await.event_type, zk::EventType::NodeDeleted);
    assert!(
        common::raw::RawClient::attach(k.addr(), session.id().0, &keeper::core::session::password(session.id().0), 1000).is_none(),
        "an expired session cannot be resumed"
    );
    assert!(four_letter(k.port, "mntr").contains("zk_ephemerals_count\t0"));
}

#[asyncs::test]
async fn session_resumes_on_a_new_connection_with_its_watches() {
    let k = Keeper::start_with("resume", "", 2);
    let c = client(&k).await;
    c.create("/sw", b"", &OPEN).await.unwrap();
    let (_, _, watch) = c.get_and_watch_data("/sw").await.unwrap();
    // A second connection with the same session takes it over; the client
    // reconnects and re-registers its watch with setWatches.
    let session = c.session().clone();
    let thief = common::raw::RawClient::attach(k.addr(), session.id().0, &keeper::core::session::password(session.id().0), 10_000).expect("re-attach");
    drop(thief);
    let other = client(&k).await;
    within(async {
        while c.check_stat("/sw").await.is_err() {
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
    })
    .await;
    other.set_data("/sw", b"changed", None).await.unwrap();
    assert_eq!(within(watch.changed()).await.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(c.session_id(), session.id(), "same session after reconnecting");
}

#[asyncs::test]
async fn many_shards_and_a_dedicated_broadcast_core_give_one_order() {
    one_order_across_shards("dedicated").await;
}

#[asyncs::test]
async fn many_shards_and_a_shared_broadcast_core_give_one_order() {
    one_order_across_shards("shared").await;
}

/// Three shard cores: connections spread across them (SO_REUSEPORT), so
/// watches, replies and reads cross cores; the broadcast loop on a core of
/// its own or on shard 0's (`mode`).
async fn one_order_across_shards(mode: &str) {
    let k = Keeper::start_with(&format!("shards-{mode}"), &format!("keeper.broadcastCore={mode}"), 3);
    let said = if mode == "shared" { "the broadcast loop on shard 0's core" } else { "a broadcast core" };
    assert!(k.log().contains(&format!("3 shard core(s) and {said}")), "{mode}:\n{}", k.log());
    let mut clients = Vec::new();
    for _ in 0..12 {
        clients.push(client(&k).await);
    }
    clients[0].create("/s", b"", &OPEN).await.unwrap();
    let mut watches = Vec::new();
    for c in &clients {
        let (_, _, w) = c.get_and_watch_data("/s").await.unwrap();
        watches.push(w);
    }
    let stat = clients[5].set_data("/s", b"one", None).await.unwrap();
    for w in watches {
        let ev = within(w.changed()).await;
        assert_eq!((ev.event_type, ev.path.as_str()), (zk::EventType::NodeDataChanged, "/s"));
    }
    // Every client reads its own writes, and sees every earlier committed write.
    for (i, c) in clients.iter().enumerate() {
        let path = format!("/s/c{i}");
        c.create(&path, format!("{i}").as_bytes(), &OPEN).await.unwrap();
        assert_eq!(c.get_data(&path).await.unwrap().0, format!("{i}").as_bytes());
        let (data, seen) = c.get_data("/s").await.unwrap();
        assert_eq!((data.as_slice(), seen.mzxid), (b"one".as_slice(), stat.mzxid));
    }
    clients[11].sync("/s").await.unwrap();
    assert_eq!(clients[11].list_children("/s").await.unwrap().len(), clients.len());
    // A read that starts after another client's write completed sees it, on
    // whichever shard each client landed (as on a single ZooKeeper server).
    for round in 0..300usize {
        let (writer, reader) = (&clients[round % 12], &clients[(round * 5 + 1) % 12]);
        let value = format!("r{round}");
        writer.set_data("/s", value.as_bytes(), None).await.unwrap();
        assert_eq!(reader.get_data("/s").await.unwrap().0, value.as_bytes(), "round {round}: a completed write is visible to every later read");
    }
}

#[asyncs::test]
async fn one_cpu_serves_with_either_broadcast_core() {
    // The default on one CPU is the broadcast loop on the shard's executor;
    // a dedicated broadcast core then shares the CPU as a second thread.
    for (extra, said) in [("", "the broadcast loop on shard 0's core"), ("keeper.broadcastCore=dedicated", "a broadcast core")] {
        let k = Keeper::start_on_one_cpu("one-cpu", extra);
        assert!(k.log().contains("cpus [0]") && k.log().contains(said), "the server saw one CPU and used {said}:\n{}", k.log());
        let a = client(&k).await;
        let b = client(&k).await;
        a.create("/one", b"1", &OPEN).await.unwrap();
        let (_, _, watch) = b.get_and_watch_data("/one").await.unwrap();
        a.set_data("/one", b"2", None).await.unwrap();
        assert_eq!(within(watch.changed()).await.event_type, zk::EventType::NodeDataChanged);
        assert_eq!(b.get_data("/one").await.unwrap().0, b"2");
    }
}
