//! The AdminServer, configured with ZooKeeper's keys, against real `keeper
//! serve` processes: `/commands` lists every command, each command and its
//! aliases answer JSON in ZooKeeper's envelope, the values follow the server
//! (node counts, watches, ephemerals, the trace mask, the leader), and
//! errors are ZooKeeper's (unknown command, not serving) or HTTP's (other
//! paths, methods, request bodies).

mod common;

use common::ensemble::Ensemble;
use common::raw::RawClient;
use common::{Keeper, four_letter, http};
use serde_json::Value;

/// Every primary command name ZooKeeper 3.8's AdminServer registers that keeper answers.
const COMMANDS: &[&str] = &[
    "configuration",
    "connection_stat_reset",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observer_connection_stat_reset",
    "observers",
    "ruok",
    "server_stats",
    "set_trace_mask",
    "stat_reset",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];

/// GETs `/commands/<name>` (with `query`); the JSON body, after checking the envelope.
fn command(port: u16, name: &str) -> Value {
    let (status, headers, body) = http(port, &format!("GET /commands/{name} HTTP/1.1\r\nHost: keeper\r\n\r\n"));
    assert_eq!(status, "HTTP/1.1 200 OK", "{name}: {body}");
    assert!(headers.contains("Content-Type: application/json"), "{name}: {headers}");
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {body}"));
    assert!(json.get("command").is_some() && json.get("error").is_some(), "{name}: ZooKeeper's envelope: {json}");
    json
}

#[test]
fn every_command_answers_json_that_follows_the_server() {
    let port = common::free_port();
    let k = Keeper::start_with("admin", &format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}"), 2);

    let (status, headers, list) = http(port, "GET /commands HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Type: text/html"), "{headers}");
    for name in COMMANDS {
        assert!(list.contains(&format!("<a href=\"/commands/{name}\">{name}</a>\n<br/>\n")), "{name} is listed:\n{list}");
        let json = if *name == "set_trace_mask" { command(port, "set_trace_mask?traceMask=306") } else { command(port, name) };
        assert_eq!(json["command"], *name, "{json}");
        if *name != "leader" {
            assert!(json["error"].is_null(), "{name}: {json}");
        }
    }
    // Aliases answer under the primary name.
    for (alias, name) in [("mntr", "monitor"), ("conf", "configuration"), ("srvr", "server_stats"), ("wchc", "watches"), ("lead", "leader")] {
        assert_eq!(command(port, alias)["command"], name);
    }

    // The values follow the server.
    assert_eq!(command(port, "conf")["client_port"], k.port);
    assert_eq!(command(port, "leader")["error"], "server is not initialized", "a standalone server has no leader");
    assert_eq!(command(port, "zabstate")["voting"], false);
    assert_eq!(command(port, "isro")["read_only"], false);
    let before = command(port, "mntr")["znode_count"].as_i64().unwrap();
    let mut c = RawClient::connect(k.addr());
    for i in 0..3 {
        assert_eq!(c.create(&format!("/a{i}"), b"x", 0), Some(0));
    }
    assert_eq!(c.create("/eph", b"x", 1), Some(0));
    let (reply, _) = c.call(4, |w| {
        w.ustring("/a0").boolean(true);
    });
    assert_eq!(reply.header.err, 0);
    let mntr = command(port, "monitor");
    assert_eq!(mntr["znode_count"].as_i64().unwrap(), before + 4, "{mntr}");
    assert_eq!(mntr["server_state"], "standalone");
    let srvr = command(port, "srvr");
    assert_eq!(srvr["node_count"], mntr["znode_count"]);
    assert_eq!(srvr["server_stats"]["last_processed_zxid"], reply.header.zxid, "{srvr}");
    let node_count = four_letter(k.port, "srvr").lines().find_map(|l| l.strip_prefix("Node count: ")).unwrap().trim().parse::<i64>().unwrap();
    assert_eq!(srvr["node_count"], node_count, "the same count as the four-letter srvr");
    let session = command(port, "cons")["connections"].as_array().unwrap().iter().find_map(|c| c["session_id"].as_i64().filter(|s| *s != 0));
    let session = session.expect("the client's connection is listed with its session");
    assert_eq!(command(port, "wchc")["session_id_to_watched_paths"][session.to_string()], serde_json::json!(["/a0"]));
    assert_eq!(command(port, "wchp")["path_to_session_ids"]["/a0"], serde_json::json!([session]));
    assert_eq!(command(port, "wchs")["num_total_watches"], 1);
    assert_eq!(command(port, "dump")["session_id_to_ephemeral_paths"][session.to_string()], serde_json::json!(["/eph"]));
    assert_eq!(command(port, "stat")["connections"].as_array().unwrap().len(), 1);

    // stmk sets the mask gtmk (and the four-letter gtmk) read.
    assert_eq!(command(port, "stmk?traceMask=250")["tracemask"], 250);
    assert_eq!(command(port, "gtmk")["tracemask"], 250);
    assert_eq!(four_letter(k.port, "gtmk"), "250");
    let missing = command(port, "stmk");
    assert_eq!(missing["error"], "setTraceMask requires long traceMask argument");

    // ZooKeeper's errors, and HTTP's.
    assert_eq!(command(port, "nope"), serde_json::json!({ "command": "nope", "error": "Unknown command: nope" }));
    assert!(http(port, "GET /other HTTP/1.1\r\n\r\n").0.contains("404"));
    assert!(http(port, "POST /commands/ruok HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0.contains("405"));
    assert!(http(port, "GET /commands/ruok HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0.contains("413"));
}

#[test]
fn the_command_url_moves_and_the_server_is_off_unless_asked_for() {
    let port = common::free_port();
    let _k = Keeper::start_with("admin-url", &format!("admin.serverAddress=127.0.0.1\nadmin.serverPort={port}\nadmin.commandURL=/zk/cmds"), 1);
    let (status, _, body) = http(port, "GET /zk/cmds/ruok HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(http(port, "GET /commands/ruok HTTP/1.1\r\n\r\n").0.contains("404"));
    let off = common::free_port();
    let _k = Keeper::start_with("admin-off", &format!("admin.enableServer=false\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={off}"), 1);
    assert!(std::net::TcpStream::connect(("127.0.0.1", off)).is_err(), "admin.enableServer=false keeps the port closed");
}

#[test]
fn an_ensembles_members_agree_on_their_leader() {
    let ports = common::free_ports(3);
    let e = Ensemble::start_each("admin-ens", 3, &|id| format!("admin.serverAddress=127.0.0.1\nadmin.serverPort={}\n", ports[id as usize - 1]));
    let leader = e.leader();
    let views: Vec<Value> = ports.iter().map(|p| command(*p, "leader")).collect();
    for (i, view) in views.iter().enumerate() {
        assert_eq!(view["is_leader"], i == leader, "{view}");
        assert_eq!(view["leader_id"], leader as i64 + 1, "{view}");
        assert_eq!(view["leader_ip"], "127.0.0.1");
        let zab = command(ports[i], "zabstate");
        assert_eq!((zab["myid"].as_i64(), &zab["zabstate"], &zab["voting"]), (Some(i as i64 + 1), &Value::from("broadcast"), &Value::from(true)), "{zab}");
    }
    let view = command(ports[0], "voting_view")["current_config"].clone();
    assert_eq!(view.as_object().unwrap().len(), 3, "{view}");
    assert_eq!(view["2"]["learner_type"], "participant");
    assert_eq!(command(ports[leader], "mntr")["server_state"], "leader");
}
