//! The AdminServer, configured as ZooKeeper's is (`admin.enableServer`,
//! `admin.serverAddress`, `admin.serverPort`, default 8080,
//! `admin.commandURL`, default `/commands`). Shard 0 accepts on its port
//! ([`super::http`]), off the client path. `GET /commands` lists the
//! commands; `GET /commands/<name or alias>` runs one and answers JSON
//! shaped like ZooKeeper 3.8's: the command's fields in its order, then
//! `"command"` (the primary name) and `"error"` (null on success).
//!
//! A command asks the cores for the report the four-letter words use, and
//! is rendered from it here. keeper has no JVM: where ZooKeeper shows Java
//! facts (environment, system properties) keeper shows its process's, and
//! the fields that describe Java internals keep their shape with the value
//! ZooKeeper gives when it has none (-1, `[ ]`).

use super::fourlw::{self, VERSION};
use super::http;
use crate::config::{AdminServer, Config};
use crate::core::messages::{AdminQuery, AdminReport, ConnReport};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One command: its primary name, its aliases, whether it needs a server
/// that serves clients, and the report it asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    pub name: &'static str,
    aliases: &'static [&'static str],
    needs_server: bool,
    pub query: AdminQuery,
}

const fn command(name: &'static str, aliases: &'static [&'static str], needs_server: bool, query: AdminQuery) -> Command {
    Command { name, aliases, needs_server, query }
}

/// ZooKeeper 3.8's commands keeper answers, in its registration order.
static COMMANDS: &[Command] = &[
    command("connection_stat_reset", &["crst"], true, AdminQuery::ResetConnections),
    command("configuration", &["conf", "config"], true, AdminQuery::Report),
    command("connections", &["cons"], true, AdminQuery::Report),
    command("hash", &[], true, AdminQuery::Digest),
    command("dirs", &[], true, AdminQuery::Report),
    command("dump", &[], true, AdminQuery::Report),
    command("environment", &["env", "envi"], false, AdminQuery::Report),
    command("get_trace_mask", &["gtmk"], false, AdminQuery::Report),
    command("initial_configuration", &["icfg"], true, AdminQuery::Report),
    command("is_read_only", &["isro"], true, AdminQuery::Report),
    command("last_snapshot", &["lsnp"], true, AdminQuery::Report),
    command("leader", &["lead"], true, AdminQuery::Report),
    command("monitor", &["mntr"], false, AdminQuery::Report),
    command("observer_connection_stat_reset", &["orst"], true, AdminQuery::Report),
    command("ruok", &[], true, AdminQuery::Report),
    command("set_trace_mask", &["stmk"], false, AdminQuery::Report),
    command("server_stats", &["srvr"], true, AdminQuery::Report),
    command("stats", &["stat"], true, AdminQuery::Report),
    command("stat_reset", &["srst"], true, AdminQuery::ResetServer),
    command("observers", &["obsr"], true, AdminQuery::Report),
    command("system_properties", &["sysp"], false, AdminQuery::Report),
    command("voting_view", &[], true, AdminQuery::Report),
    command("watches", &["wchc"], true, AdminQuery::Report),
    command("watches_by_path", &["wchp"], true, AdminQuery::Report),
    command("watch_summary", &["wchs"], true, AdminQuery::Report),
    command("zabstate", &[], false, AdminQuery::Report),
];

/// The command `name` (primary or alias; case matters, as in ZooKeeper).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name || c.aliases.contains(&name))
}

/// What a request comes to.
#[derive(Debug)]
pub enum Routed {
    /// Run this command: gather the report, then [`render`].
    Run(&'static Command),
    /// The whole HTTP response, known already.
    Answer(String),
}

/// Routes a GET of `path` (with `query`); `serving`: the server serves
/// clients (commands that need it fail otherwise, as in ZooKeeper).
pub fn route(admin: &AdminServer, path: &str, query: &str, serving: bool) -> Routed {
    let base = admin.command_url.as_str();
    if path == base || path.strip_prefix(base) == Some("/") {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let links: String = names.iter().map(|n| format!("<a href=\"{base}/{n}\">{n}</a>\n<br/>\n")).collect();
        return Routed::Answer(http::ok("text/html", &links));
    }
    let Some(name) = path.strip_prefix(base).and_then(|rest| rest.strip_prefix('/')) else {
        return Routed::Answer(http::error("404 Not Found"));
    };
    let failed = |error: String| Routed::Answer(json_response(envelope(Map::new(), name, Some(error))));
    let Some(cmd) = find(name) else { return failed(format!("Unknown command: {name}")) };
    if cmd.needs_server && !serving {
        return failed("This ZooKeeper instance is not currently serving requests".into());
    }
    if cmd.name == "set_trace_mask" {
        let asked = "setTraceMask requires long traceMask argument";
        let Some(value) = http::query_param(query, "traceMask") else { return failed(asked.into()) };
        let Ok(mask) = value.parse::<i64>() else { return failed(format!("{asked}, got {value}")) };
        fourlw::trace_mask(fourlw::SET_TRACE_MASK, Some(mask));
    }
    Routed::Run(cmd)
}

/// ZooKeeper's envelope: the command's fields, then its name and error.
fn envelope(mut fields: Map<String, Value>, name: &str, error: Option<String>) -> Map<String, Value> {
    fields.insert("command".into(), name.into());
    if !fields.contains_key("error") {
        fields.insert("error".into(), error.map_or(Value::Null, Value::String));
    }
    fields
}

fn json_response(body: Map<String, Value>) -> String {
    let text = serde_json::to_string_pretty(&Value::Object(body)).expect("a JSON map serializes");
    http::ok("application/json", &text)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// Renders the answer to `cmd` from `report`: the whole HTTP response.
pub fn render(cmd: &Command, report: &AdminReport, cfg: &Config) -> String {
    let fields = match cmd.name {
        "connection_stat_reset" | "observer_connection_stat_reset" | "ruok" | "stat_reset" => Map::new(),
        "configuration" => configuration(cfg),
        "connections" => object(json!({ "connections": fourlw::conns(report).map(full_conn).collect::<Vec<_>>(), "secure_connections": [] })),
        "hash" => {
            let digest = report.digest.expect("hash reports carry a digest");
            object(json!({ "digests": [{ "zxid": report.last_zxid, "digest": digest as i64, "digest_version": 2 }] }))
        }
        "dirs" => object(json!({ "datadir_size": fourlw::dir_bytes(&cfg.data_dir), "logdir_size": fourlw::dir_bytes(&cfg.data_log_dir) })),
        "dump" => dump(report),
        "environment" => fourlw::environment().into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect(),
        "get_trace_mask" | "set_trace_mask" => {
            let mask: i64 = fourlw::trace_mask("gtmk", None).and_then(|m| m.parse().ok()).unwrap_or_default();
            object(json!({ "tracemask": mask }))
        }
        "initial_configuration" => {
            let text = cfg.source.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
            object(json!({ "initial_configuration": text }))
        }
        "is_read_only" => object(json!({ "read_only": report.mode == "read-only" })),
        "last_snapshot" => last_snapshot(cfg),
        "leader" => leader(report, cfg),
        "monitor" => fourlw::monitor_rows(report).into_iter().map(|(k, v)| (k, number_or_text(v))).collect(),
        "server_stats" => server_stats(report, cfg),
        "stats" => {
            let mut fields = server_stats(report, cfg);
            fields.insert("connections".into(), fourlw::conns(report).map(brief_conn).collect());
            fields.insert("secure_connections".into(), json!([]));
            fields
        }
        "observers" => {
            let synced = report.ensemble.as_ref().and_then(|e| e.leader.as_ref()).map_or(0, |l| l.synced_observers);
            object(json!({ "synced_observers": synced, "observers": [] }))
        }
        "system_properties" => system_properties(cfg),
        "voting_view" => voting_view(cfg),
        "watches" => {
            let by_session: Map<String, Value> = fourlw::watches_by_session(report).into_iter().map(|(s, paths)| (s.to_string(), json!(paths))).collect();
            object(json!({ "session_id_to_watched_paths": by_session }))
        }
        "watches_by_path" => {
            let mut by_path: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
            for (path, sessions) in report.shards.iter().flat_map(|s| s.data_watches.iter()) {
                by_path.entry(path).or_default().extend(sessions);
            }
            object(json!({ "path_to_session_ids": by_path }))
        }
        "watch_summary" => {
            let by_session = fourlw::watches_by_session(report);
            let paths: usize = report.shards.iter().map(|s| s.data_watches.len()).sum();
            let total: usize = by_session.values().map(Vec::len).sum();
            object(json!({ "num_connections": by_session.len(), "num_paths": paths, "num_total_watches": total }))
        }
        "zabstate" => zabstate(report, cfg),
        other => unreachable!("every command in COMMANDS is rendered: {other}"),
    };
    json_response(envelope(fields, cmd.name, None))
}

/// mntr's value as JSON: a number where it is one.
fn number_or_text(v: String) -> Value {
    if let Ok(n) = v.parse::<i64>() {
        return n.into();
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => f.into(),
        _ => v.into(),
    }
}

fn configuration(cfg: &Config) -> Map<String, Value> {
    let versioned = |dir: &std::path::Path| dir.join(crate::storage::log::DATA_SUBDIR).display().to_string();
    object(json!({
        "client_port": cfg.client_addr.port(),
        "data_dir": versioned(&cfg.data_dir),
        "data_log_dir": versioned(&cfg.data_log_dir),
        "tick_time": cfg.tick_ms,
        "max_client_cnxns": cfg.max_client_cnxns,
        "min_session_timeout": cfg.min_session_timeout_ms,
        "max_session_timeout": cfg.max_session_timeout_ms,
        "server_id": if cfg.servers.is_empty() { 0 } else { cfg.my_id },
        "client_port_listen_backlog": -1,
    }))
}

fn full_conn(c: &ConnReport) -> Value {
    json!({
        "remote_socket_address": c.peer,
        "interest_ops": 1,
        "outstanding_requests": c.queued,
        "packets_received": c.received,
        "packets_sent": c.sent,
        "session_id": c.session_id,
        "last_operation": c.last_op,
        "established": c.established_ms,
        "session_timeout": c.timeout_ms,
        "last_cxid": c.last_cxid,
        "last_zxid": c.last_zxid,
        "last_response_time": c.last_response_ms,
        "last_latency": c.last_latency_ms,
        "min_latency": c.min_latency_ms,
        "avg_latency": c.avg_latency_ms,
        "max_latency": c.max_latency_ms,
    })
}

fn brief_conn(c: &ConnReport) -> Value {
    json!({
        "remote_socket_address": c.peer,
        "interest_ops": 1,
        "outstanding_requests": c.queued,
        "packets_received": c.received,
        "packets_sent": c.sent,
    })
}

fn dump(report: &AdminReport) -> Map<String, Value> {
    let mut by_expiry: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, _, at) in &report.sessions {
        by_expiry.entry(*at).or_default().push(*id);
    }
    let expiry: Map<String, Value> = by_expiry.into_iter().map(|(at, ids)| (at.to_string(), json!(ids))).collect();
    let mut ephemerals = report.ephemerals.clone();
    ephemerals.sort();
    let ephemerals: Map<String, Value> = ephemerals.into_iter().map(|(s, paths)| (s.to_string(), json!(paths))).collect();
    object(json!({ "expiry_time_to_session_ids": expiry, "session_id_to_ephemeral_paths": ephemerals }))
}

/// The newest snapshot: its zxid (hex, no `0x`) and its file's time in
/// seconds; `ffffffffffffffff` and -1 when there is none.
fn last_snapshot(cfg: &Config) -> Map<String, Value> {
    let dir = cfg.data_dir.join(crate::storage::log::DATA_SUBDIR);
    let newest = crate::storage::snapshot::list(&dir).ok().and_then(|files| files.into_iter().last());
    let (zxid, seconds) = match newest {
        Some(file) => {
            let modified = std::fs::metadata(&file.path).and_then(|m| m.modified()).ok();
            let seconds = modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(-1, |d| d.as_secs() as i64);
            (format!("{:x}", file.zxid.raw()), seconds)
        }
        None => ("ffffffffffffffff".to_string(), -1),
    };
    object(json!({ "zxid": zxid, "timestamp": seconds }))
}

fn leader(report: &AdminReport, cfg: &Config) -> Map<String, Value> {
    let Some(ensemble) = &report.ensemble else {
        return object(json!({ "error": "server is not initialized" }));
    };
    let leader = cfg.servers.iter().find(|s| s.id as u64 == ensemble.leader_id);
    object(json!({
        "is_leader": report.mode == "leader",
        "leader_id": leader.map_or(-1, |s| s.id as i64),
        "leader_ip": leader.map_or(String::new(), |s| s.host.clone()),
    }))
}

fn server_stats(report: &AdminReport, cfg: &Config) -> Map<String, Value> {
    let c = fourlw::counters(report);
    let unknown_buffers = json!({ "last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1 });
    let mut fields = object(json!({
        "version": VERSION,
        "read_only": report.mode == "read-only",
        "server_stats": {
            "packets_sent": c.packets_sent,
            "packets_received": c.packets_received,
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": unknown_buffers,
            "min_latency": c.latency.min_ms,
            "avg_latency": c.latency.avg_ms(),
            "max_latency": c.latency.max_ms,
            "outstanding_requests": c.outstanding,
            "last_processed_zxid": report.last_zxid,
            "data_dir_size": fourlw::dir_bytes(&cfg.data_dir),
            "log_dir_size": fourlw::dir_bytes(&cfg.data_log_dir),
            "server_state": report.mode,
            "num_alive_client_connections": fourlw::conns(report).count(),
            "uptime": report.uptime_ms,
            "provider_null": false,
            "non_mtlslocal_conn_count": 0,
            "non_mtlsremote_conn_count": 0,
            "auth_failed_count": c.auth_failed,
        },
        "client_response": unknown_buffers,
    }));
    if let Some(l) = report.ensemble.as_ref().and_then(|e| e.leader.as_ref()) {
        let sizes = json!({ "last_buffer_size": l.last_proposal_size, "min_buffer_size": l.min_proposal_size, "max_buffer_size": l.max_proposal_size });
        fields.insert("proposal_stats".into(), sizes);
    }
    fields.insert("node_count".into(), report.node_count.into());
    fields
}

/// keeper has no JVM: its "system properties" are the process facts envi
/// shows and the AdminServer's own keys, sorted by name as ZooKeeper's.
fn system_properties(cfg: &Config) -> Map<String, Value> {
    let mut props: BTreeMap<String, String> = fourlw::environment().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if let Some(admin) = &cfg.admin {
        props.insert("zookeeper.admin.serverAddress".into(), admin.addr.ip().to_string());
        props.insert("zookeeper.admin.serverPort".into(), admin.addr.port().to_string());
        props.insert("zookeeper.admin.commandURL".into(), admin.command_url.clone());
    }
    props.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

fn voting_view(cfg: &Config) -> Map<String, Value> {
    let servers: Map<String, Value> = cfg
        .servers
        .iter()
        .map(|s| {
            let host = if s.host.contains(':') { format!("[{}]", s.host) } else { s.host.clone() };
            let client = match (&s.client_host, s.client_port) {
                (host, Some(port)) => format!("{}:{port}", host.as_deref().unwrap_or("0.0.0.0")),
                _ => String::new(),
            };
            let view = json!({
                "server_addresses": [format!("{host}:{}", s.peer_port)],
                "election_addresses": [format!("{host}:{}", s.election_port)],
                "client_address": client,
                "learner_type": if s.role == crate::config::ensemble::Role::Observer { "observer" } else { "participant" },
            });
            (s.id.to_string(), view)
        })
        .collect();
    object(json!({ "current_config": servers }))
}

fn zabstate(report: &AdminReport, cfg: &Config) -> Map<String, Value> {
    let (Some(ensemble), Some(me)) = (&report.ensemble, cfg.servers.iter().find(|s| s.id == cfg.my_id)) else {
        return object(json!({ "voting": false, "zabstate": "" }));
    };
    let host = if me.host.contains(':') { format!("[{}]", me.host) } else { me.host.clone() };
    let address = |port: u16| json!({ "all_addresses": [format!("{host}:{port}")], "all_ports": [port], "all_host_strings": [me.host] });
    object(json!({
        "myid": cfg.my_id,
        "is_leader": report.mode == "leader",
        "quorum_address": address(me.peer_port),
        "election_address": address(me.election_port),
        "client_address": cfg.client_addr.to_string(),
        "voting": me.role != crate::config::ensemble::Role::Observer,
        "last_zxid": format!("{:#x}", report.last_zxid),
        "zab_epoch": report.last_zxid >> 32,
        "zab_counter": report.last_zxid & 0xffff_ffff,
        "zabstate": if ensemble.leader_id == 0 { "election" } else { "broadcast" },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> AdminServer {
        AdminServer { addr: "127.0.0.1:8080".parse().unwrap(), command_url: "/commands".into() }
    }

    fn body(response: &str) -> Value {
        let (_, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        serde_json::from_str(body).expect("a JSON body")
    }

    #[test]
    fn routes_names_aliases_and_errors() {
        assert!(matches!(route(&admin(), "/commands/conf", "", true), Routed::Run(c) if c.name == "configuration"));
        assert!(matches!(route(&admin(), "/commands/monitor", "", false), Routed::Run(c) if c.name == "monitor"));
        let Routed::Answer(list) = route(&admin(), "/commands/", "", true) else { panic!("the list is answered at once") };
        assert!(list.contains("<a href=\"/commands/watch_summary\">watch_summary</a>\n<br/>\n"), "{list}");
        let Routed::Answer(unknown) = route(&admin(), "/commands/nope", "", true) else { panic!() };
        assert_eq!(body(&unknown), json!({ "command": "nope", "error": "Unknown command: nope" }));
        let Routed::Answer(not_serving) = route(&admin(), "/commands/srvr", "", false) else { panic!() };
        assert_eq!(body(&not_serving)["error"], "This ZooKeeper instance is not currently serving requests");
        let Routed::Answer(missing) = route(&admin(), "/commands/stmk", "", true) else { panic!() };
        assert_eq!(body(&missing)["error"], "setTraceMask requires long traceMask argument");
        let Routed::Answer(bad) = route(&admin(), "/commands/stmk", "traceMask=x", true) else { panic!() };
        assert_eq!(body(&bad)["error"], "setTraceMask requires long traceMask argument, got x");
        let Routed::Answer(elsewhere) = route(&admin(), "/other", "", true) else { panic!() };
        assert!(elsewhere.starts_with("HTTP/1.1 404 "));
    }

    #[test]
    fn every_command_renders_its_envelope() {
        let report = AdminReport { last_zxid: 0x1_0000_0005, node_count: 4, mode: "standalone", digest: Some(7), ..Default::default() };
        for cmd in COMMANDS {
            let json = body(&render(cmd, &report, &Config::default()));
            assert_eq!(json["command"], cmd.name);
            let error = &json["error"];
            assert!(error.is_null() || cmd.name == "leader", "{}: {json}", cmd.name);
        }
        let srvr = body(&render(find("srvr").unwrap(), &report, &Config::default()));
        assert_eq!(srvr["node_count"], 4);
        assert_eq!(srvr["server_stats"]["last_processed_zxid"], 0x1_0000_0005_i64);
        let lead = body(&render(find("lead").unwrap(), &report, &Config::default()));
        assert_eq!(lead, json!({ "error": "server is not initialized", "command": "leader" }));
    }
}
