//! The `keeper` command line.
//!
//! ```text
//! keeper serve [--config zoo.cfg] [--shards N] [--broadcast-core shared|dedicated]   run a server
//! keeper purge [--config zoo.cfg] [--count N]    delete old snapshots and logs
//! keeper log dump PATH                           print a log segment (or a directory of them)
//! keeper snapshot dump PATH                      print a snapshot
//! keeper version                                 print the version
//! ```

use crate::config::Config;

/// Usage text, shown on `--help` and after a usage error.
pub const USAGE: &str = "usage:
  keeper serve [--config PATH] [--shards N] [--broadcast-core shared|dedicated]
      Run a server. Without --config: standalone on 127.0.0.1:2181, data in ./keeper-data.
      PATH is an Apache ZooKeeper zoo.cfg. --shards overrides keeper.shards,
      --broadcast-core keeper.broadcastCore (default: shared on 1-2 CPUs).
  keeper purge [--config PATH] [--count N]
      Delete snapshots and log segments older than the newest N valid snapshots
      (default autopurge.snapRetainCount, at least 3). Safe while the server runs.
  keeper log dump PATH
      Print the transactions of a log segment, or of every segment in a directory,
      and report corruption with its offset.
  keeper snapshot dump PATH
      Print a snapshot's sessions and nodes, or what makes it invalid.
  keeper version
      Print the version.";

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("serve") => exit_code(serve(args.collect())),
        Some("purge") => exit_code(purge(args.collect())),
        Some("log") if args.next().as_deref() == Some("dump") => exit_code(dump(args.next(), |p, out| {
            crate::server::inspect::dump_log(p, out).and_then(|clean| if clean { Ok(()) } else { Err("corruption found (see above)".into()) })
        })),
        Some("snapshot") if args.next().as_deref() == Some("dump") => exit_code(dump(args.next(), crate::server::inspect::dump_snapshot)),
        Some("version") | Some("--version") => {
            println!("keeper {} (ZooKeeper wire protocol 3.5-3.9)", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            0
        }
        other => {
            if let Some(cmd) = other {
                eprintln!("keeper: unknown command {cmd:?}");
            }
            eprintln!("{USAGE}");
            2
        }
    }
}

fn exit_code(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keeper: {e}");
            1
        }
    }
}

fn dump(path: Option<String>, f: impl FnOnce(&std::path::Path, &mut std::io::StdoutLock<'static>) -> Result<(), String>) -> Result<(), String> {
    let path = path.ok_or_else(|| format!("a PATH is needed\n{USAGE}"))?;
    f(std::path::Path::new(&path), &mut std::io::stdout().lock())
}

fn purge(args: Vec<String>) -> Result<(), String> {
    let mut cfg = Config::default();
    let mut count = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => cfg = Config::from_file(std::path::Path::new(&it.next().ok_or("--config needs a path")?)).map_err(|e| e.to_string())?,
            "--count" => {
                let v = it.next().ok_or("--count needs a number")?;
                count = Some(v.parse::<usize>().ok().filter(|n| *n >= 3).ok_or(format!("--count: expected a number of at least 3, got {v:?}"))?);
            }
            other => return Err(format!("purge: unknown argument {other:?}\n{USAGE}")),
        }
    }
    let retain = count.unwrap_or(cfg.snap_retain_count as usize);
    let dir = |d: &std::path::Path| d.join(crate::storage::log::DATA_SUBDIR);
    let purged = crate::storage::purge::purge(&dir(&cfg.data_dir), &dir(&cfg.data_log_dir), retain)?;
    for p in purged.snapshots.iter().chain(&purged.segments) {
        println!("removed {}", p.display());
    }
    println!("kept the newest {retain} snapshots and the log they need");
    Ok(())
}

fn serve(args: Vec<String>) -> Result<(), String> {
    let mut config_path = None;
    let mut shards = None;
    let mut shared_broadcast = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => config_path = Some(it.next().ok_or("--config needs a path")?),
            "--shards" => {
                let v = it.next().ok_or("--shards needs a number")?;
                shards = Some(v.parse::<usize>().ok().filter(|n| (1..=256).contains(n)).ok_or(format!("--shards: expected 1-256, got {v:?}"))?);
            }
            "--broadcast-core" => {
                let v = it.next().ok_or("--broadcast-core needs shared or dedicated")?;
                shared_broadcast = Some(crate::config::parse_broadcast_core(&v).ok_or(format!("--broadcast-core: expected shared or dedicated, got {v:?}"))?);
            }
            other => return Err(format!("serve: unknown argument {other:?}\n{USAGE}")),
        }
    }
    let mut cfg = match &config_path {
        Some(p) => Config::from_file(std::path::Path::new(p)).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    cfg.load_my_id().map_err(|e| e.to_string())?;
    if let Some(n) = shards {
        cfg.shards = n;
    }
    if let Some(shared) = shared_broadcast {
        cfg.shared_broadcast = shared;
    }
    if !cfg.unsupported.is_empty() {
        eprintln!("keeper: warning: these config keys are not supported and have no effect: {}", cfg.unsupported.join(", "));
    }
    if !cfg.force_sync {
        eprintln!("keeper: warning: forceSync=no: writes are acknowledged before they are durable; use this for benchmarks only");
    }
    if !cfg.servers.is_empty() {
        let members: Vec<String> = cfg.servers.iter().map(|s| format!("{}={} ({})", s.id, s.peer_address(), s.role.name())).collect();
        eprintln!("keeper: server {} of an ensemble of {}", cfg.my_id, members.join(", "));
    }
    crate::runtime::serve(cfg)
}
