//! The `keeper` command line.
//!
//! ```text
//! keeper serve [--config zoo.cfg] [--shards N] [--broadcast-core shared|dedicated]   run a server
//! keeper purge [--config zoo.cfg] [--count N]    delete old snapshots and logs
//! keeper log dump PATH                           print a log segment (or a directory of them)
//! keeper snapshot dump PATH                      print a snapshot
//! keeper import --zookeeper-data DIR [--zookeeper-log DIR] --data DIR [--data-log DIR]
//!                                                a keeper data directory from ZooKeeper's
//! keeper version                                 print the version
//! keeper completions bash|zsh|fish|...           print a shell completion script
//! ```
//!
//! Parsed with clap: `--help` on every subcommand, "did you mean" for
//! misspelled subcommands and flags.

use crate::config::Config;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

/// keeper: a ZooKeeper-compatible coordination service.
#[derive(Debug, Parser)]
#[command(name = "keeper", version = concat!(env!("CARGO_PKG_VERSION"), " (ZooKeeper wire protocol 3.5-3.9)"))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server. Without --config: standalone on 127.0.0.1:2181, data in ./keeper-data.
    Serve {
        /// An Apache ZooKeeper zoo.cfg.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Shard cores (overrides keeper.shards).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        shards: Option<u16>,
        /// Where the broadcast loop runs (overrides keeper.broadcastCore; default: shared on 1-2 CPUs).
        #[arg(long, value_name = "shared|dedicated", value_parser = ["shared", "dedicated"])]
        broadcast_core: Option<String>,
    },
    /// Delete snapshots and log segments older than the newest N valid snapshots. Safe while the server runs.
    Purge {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Snapshots to keep (default autopurge.snapRetainCount; at least 3).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(3..))]
        count: Option<u32>,
    },
    /// Print the transactions of a log segment (or of every segment in a directory), and report corruption with its offset.
    Log {
        #[command(subcommand)]
        what: Dump,
    },
    /// Print a snapshot's sessions and nodes, or what makes it invalid.
    Snapshot {
        #[command(subcommand)]
        what: Dump,
    },
    /// Build a keeper data directory from an Apache ZooKeeper (3.5-3.9) one: its newest valid snapshot and the transaction logs after it. Run it with ZooKeeper stopped, into a new directory.
    Import {
        /// ZooKeeper's dataDir (holding version-2/snapshot.*).
        #[arg(long, value_name = "DIR")]
        zookeeper_data: PathBuf,
        /// ZooKeeper's dataLogDir (holding version-2/log.*), when not its dataDir.
        #[arg(long, value_name = "DIR")]
        zookeeper_log: Option<PathBuf>,
        /// keeper's dataDir to create.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// keeper's dataLogDir, when not its dataDir.
        #[arg(long, value_name = "DIR")]
        data_log: Option<PathBuf>,
    },
    /// Print the version.
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum Dump {
    /// Print the file (or directory) at PATH.
    Dump { path: PathBuf },
}

/// Runs the command line (the arguments after the program name); returns
/// the process exit code. Usage errors print clap's message, with "did you
/// mean" where a subcommand or flag is misspelled, and exit 2.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once("keeper".to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Serve { config, shards, broadcast_core } => exit_code(serve(config, shards, broadcast_core)),
        Command::Purge { config, count } => exit_code(purge(config, count)),
        Command::Log { what: Dump::Dump { path } } => exit_code(
            crate::server::inspect::dump_log(&path, &mut std::io::stdout().lock())
                .and_then(|clean| if clean { Ok(()) } else { Err("corruption found (see above)".into()) }),
        ),
        Command::Snapshot { what: Dump::Dump { path } } => exit_code(crate::server::inspect::dump_snapshot(&path, &mut std::io::stdout().lock())),
        Command::Import { zookeeper_data, zookeeper_log, data, data_log } => exit_code(crate::server::import::import(
            &zookeeper_data,
            zookeeper_log.as_ref().unwrap_or(&zookeeper_data),
            &data,
            data_log.as_ref().unwrap_or(&data),
        )),
        Command::Version => {
            println!("keeper {} (ZooKeeper wire protocol 3.5-3.9)", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "keeper", &mut std::io::stdout());
            0
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

fn load_config(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::from_file(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

fn purge(config: Option<PathBuf>, count: Option<u32>) -> Result<(), String> {
    let cfg = load_config(config.as_ref())?;
    let retain = count.unwrap_or(cfg.snap_retain_count) as usize;
    let dir = |d: &std::path::Path| d.join(crate::storage::log::DATA_SUBDIR);
    let purged = crate::storage::purge::purge(&dir(&cfg.data_dir), &dir(&cfg.data_log_dir), retain)?;
    for p in purged.snapshots.iter().chain(&purged.segments) {
        println!("removed {}", p.display());
    }
    println!("kept the newest {retain} snapshots and the log they need");
    Ok(())
}

fn serve(config: Option<PathBuf>, shards: Option<u16>, broadcast_core: Option<String>) -> Result<(), String> {
    let mut cfg = load_config(config.as_ref())?;
    let shared_broadcast = broadcast_core.map(|v| crate::config::parse_broadcast_core(&v).expect("clap accepts only shared or dedicated"));
    cfg.load_my_id().map_err(|e| e.to_string())?;
    cfg.load_sasl().map_err(|e| e.to_string())?;
    if let Some(n) = shards {
        cfg.shards = n as usize;
    }
    if let Some(shared) = shared_broadcast {
        cfg.shared_broadcast = shared;
    }
    crate::log::init(&crate::log::filter(cfg.log_level.as_deref()))?;
    for unknown in &cfg.unknown {
        tracing::warn!("{unknown}; it has no effect");
    }
    if !cfg.unsupported.is_empty() {
        tracing::warn!("these config keys are not supported and have no effect: {}", cfg.unsupported.join(", "));
    }
    if !cfg.force_sync {
        tracing::warn!("forceSync=no: writes are acknowledged before they are durable; use this for benchmarks only");
    }
    if !cfg.servers.is_empty() {
        let members: Vec<String> = cfg.servers.iter().map(|s| format!("{}={} ({})", s.id, s.peer_address(), s.role.name())).collect();
        tracing::info!("server {} of an ensemble of {}", cfg.my_id, members.join(", "));
    }
    crate::runtime::serve(cfg)
}
