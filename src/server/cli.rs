//! The `keeper` command line.
//!
//! ```text
//! keeper serve [--config zoo.cfg] [--shards N]   run a server
//! keeper version                                 print the version
//! ```

use crate::server::config::Config;

/// Usage text, shown on `--help` and after a usage error.
pub const USAGE: &str = "usage:
  keeper serve [--config PATH] [--shards N]
      Run a server. Without --config: standalone on 127.0.0.1:2181, data in ./keeper-data.
      PATH is an Apache ZooKeeper zoo.cfg. --shards overrides keeper.shards.
  keeper version
      Print the version.";

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("serve") => match serve(args.collect()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("keeper: {e}");
                1
            }
        },
        Some("version") | Some("--version") => {
            println!(
                "keeper {} (ZooKeeper wire protocol 3.5-3.9)",
                env!("CARGO_PKG_VERSION")
            );
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

fn serve(args: Vec<String>) -> Result<(), String> {
    let mut config_path = None;
    let mut shards = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => config_path = Some(it.next().ok_or("--config needs a path")?),
            "--shards" => {
                let v = it.next().ok_or("--shards needs a number")?;
                shards = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=256).contains(n))
                        .ok_or(format!("--shards: expected 1-256, got {v:?}"))?,
                );
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
    if !cfg.unsupported.is_empty() {
        eprintln!(
            "keeper: warning: these config keys are not supported and have no effect: {}",
            cfg.unsupported.join(", ")
        );
    }
    if !cfg.force_sync {
        eprintln!(
            "keeper: warning: forceSync=no: writes are acknowledged before they are durable; use this for benchmarks only"
        );
    }
    if !cfg.peers.is_empty() {
        eprintln!(
            "keeper: warning: server.N lines are present but replication is not built yet; serving standalone as server {}",
            cfg.my_id
        );
    }
    crate::runtime::serve(cfg)
}
