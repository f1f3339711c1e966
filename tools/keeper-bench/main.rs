//! keeper-bench: a load generator and latency benchmark that speaks the
//! ZooKeeper wire protocol, so it measures keeper and Apache ZooKeeper (or
//! any compatible server) with the same code in the same run.
//!
//! ```text
//! keeper-bench run      --target HOST:PORT[,HOST:PORT...] --workload W [options]
//! keeper-bench compare  --a HOSTS --b HOSTS [--a-pid P[,P...]] [--b-pid P[,P...]] --rounds R --workload W|all [options]
//! keeper-bench calibrate [--dir DIR]
//! keeper-bench cleanup  --target HOST:PORT --namespace PATH
//! ```
//! One glommio executor per core drives the sessions (`--executors`). The
//! command line is clap's: `keeper-bench help run` explains every option
//! and every column of the table.

mod calibrate;
mod conn;
mod plot;
mod report;
mod run;
mod server;
mod stats;
mod verify;
mod workload;

use clap::{Args, Parser, Subcommand};
use report::Row;
use run::{Plan, run};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use workload::{Shape, Workload};

/// What the table's columns (and compare's figures) mean.
const COLUMNS: &str = "Columns of the table (compare prints the median of each over its rounds, and A/B):
  target      the server measured: its HOST:PORT list, or compare's --a-name/--b-name
  workload    what every session does (get set create delete exists getchildren multi
              mixed churn watch storm populate)
  clients     sessions
  pipe        requests each session keeps outstanding
  rate        open loop: requests per second in total, each sent at its intended time;
              closed: each session sends as soon as an answer comes
  ops/s       operations completed per second in the measured window
  err         operations that failed (an error reply, or no reply)
  min p50 p90 p99 p99.9 max
              latency in microseconds: from sending a request (open loop: from its
              intended time) to reading its reply
  cpu us/op   server CPU time (user + system, every thread, summed over the --server-pid
              processes) over the whole run, per operation: an upper bound, as setup,
              warmup and the workload's cleanup are included
  win us/op   the same, inside the measured window only
  rss MiB     the servers' resident memory after the run (summed), with --server-pid
Latencies are in microseconds. Client and server share the machine unless --cpus keeps
them apart: say so next to every number.";

/// keeper-bench: a load generator and latency benchmark for ZooKeeper-protocol servers.
#[derive(Debug, Parser)]
#[command(name = "keeper-bench", version, after_long_help = COLUMNS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs workloads against one server, or an ensemble (client i talks to server i mod N).
    #[command(after_long_help = COLUMNS)]
    Run {
        /// HOST:PORT[,HOST:PORT...]: one server, or an ensemble's connect string.
        #[arg(long, value_name = "HOSTS")]
        target: String,
        /// The servers' pids: report their CPU per operation and RSS (summed).
        #[arg(long, value_name = "PID[,PID...]", value_delimiter = ',')]
        server_pid: Vec<u32>,
        /// Write an HdrHistogram interval log of the first workload.
        #[arg(long, value_name = "FILE")]
        hdr_log: Option<PathBuf>,
        #[command(flatten)]
        load: Load,
    },
    /// Runs the same workloads against two servers, alternating round after round,
    /// and prints each figure's median and the ratio A/B.
    #[command(after_long_help = COLUMNS)]
    Compare {
        /// Server A's HOST:PORT[,HOST:PORT...].
        #[arg(long = "a", value_name = "HOSTS")]
        a: String,
        /// Server B's HOST:PORT[,HOST:PORT...].
        #[arg(long = "b", value_name = "HOSTS")]
        b: String,
        #[arg(long, default_value = "A")]
        a_name: String,
        #[arg(long, default_value = "B")]
        b_name: String,
        /// Server A's pids (CPU per operation and RSS).
        #[arg(long, value_name = "PID[,PID...]", value_delimiter = ',')]
        a_pid: Vec<u32>,
        /// Server B's pids.
        #[arg(long, value_name = "PID[,PID...]", value_delimiter = ',')]
        b_pid: Vec<u32>,
        /// Rounds (A then B in each).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[command(flatten)]
        load: Load,
    },
    /// Measures the machine's floors: loopback round trip, and write + fdatasync in DIR.
    Calibrate {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Deletes a namespace a populate left behind.
    Cleanup {
        #[arg(long, value_name = "HOST:PORT")]
        target: String,
        #[arg(long, value_name = "PATH")]
        namespace: String,
    },
}

/// What the sessions do, and how the results are reported.
#[derive(Debug, Clone, Args)]
struct Load {
    /// Workloads, comma-separated, or all.
    #[arg(long, value_name = "W[,W...]", required = true)]
    workload: String,
    /// Sessions.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests each session keeps outstanding.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop: operations per second in total (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Bytes per node.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// The node set; populate's count.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Children of the wide node (getchildren).
    #[arg(long, default_value_t = 1000)]
    width: usize,
    /// Reads in mixed, in percent.
    #[arg(long, default_value_t = 90)]
    read_pct: u32,
    /// Operations per multi.
    #[arg(long, default_value_t = 4)]
    multi_ops: usize,
    /// Watching sessions (watch fan-out).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Client cores (default: every CPU the client may use).
    #[arg(long)]
    executors: Option<usize>,
    /// CPUs the client may use, e.g. 0-1,4 (keep it off the server's cores).
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Read back what was written.
    #[arg(long)]
    verify: bool,
    /// JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress display (there is none when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Populate: where (default a fresh /keeper-bench-...).
    #[arg(long, value_name = "PATH")]
    namespace: Option<String>,
    /// Write a latency percentile plot (SVG).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

impl Load {
    /// Whether progress is shown: on a terminal only, and not asked away.
    fn progress(&self) -> bool {
        !self.no_progress && !self.json && std::io::stderr().is_terminal()
    }
}

/// `HOST:PORT[,HOST:PORT...]`: one server, or an ensemble's connect string.
fn addrs(s: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    s.split(',').map(|one| one.to_socket_addrs().map_err(|e| format!("{one}: {e}"))?.next().ok_or(format!("{one}: no address"))).collect()
}

fn plan(a: &Load, targets: Vec<SocketAddr>, workload: Workload) -> Result<Plan, String> {
    let unique = format!("/keeper-bench-{}-{}", std::process::id(), keeper::runtime::wall_ms() % 1_000_000);
    // Populate leaves its nodes behind (for memory and restart measurements):
    // by default in a fresh namespace, so repeated runs never collide.
    let namespace = match workload {
        Workload::Populate => a.namespace.clone().unwrap_or(format!("{unique}-populate")),
        _ => unique,
    };
    let shape = Shape { namespace, nodes: a.nodes, size: a.size, width: a.width, multi_ops: a.multi_ops, read_pct: a.read_pct };
    let cpus = cpu_list(a.cpus.as_deref().unwrap_or(""))?;
    // One executor per core the client may use: all of them, or those --cpus names.
    let cores = if cpus.is_empty() { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { cpus.len() };
    let seconds = |v: f64, name: &str| Duration::try_from_secs_f64(v).map_err(|_| format!("--{name}: expected seconds, got {v}"));
    let mut p = Plan {
        targets,
        workload,
        shape,
        clients: a.clients,
        pipeline: a.pipeline,
        rate: a.rate,
        watchers: a.watchers,
        warmup: seconds(a.warmup, "warmup")?,
        duration: seconds(a.duration, "duration")?,
        executors: a.executors.unwrap_or(cores),
        cpus,
        verify: a.verify,
        progress: a.progress(),
    };
    match workload {
        Workload::WatchFanout => {
            // Arming takes as long as it takes; the writer then writes for --duration.
            p.clients = p.watchers + 1;
            p.warmup = Duration::ZERO;
        }
        // Delete uses up its node set: no warmup, or the warmup would delete it.
        Workload::Delete => p.warmup = Duration::ZERO,
        Workload::SessionStorm | Workload::Populate => {
            // One pass, measured in full.
            p.warmup = Duration::ZERO;
            p.duration = Duration::from_secs(3600);
            p.progress = false;
        }
        _ => {}
    }
    if p.clients == 0 || p.pipeline == 0 {
        return Err("--clients and --pipeline must be at least 1".into());
    }
    Ok(p)
}

/// Runs one plan against its targets, with the servers' CPU and RSS (summed) if their pids are known.
fn measured_run(name: &str, plan: &Plan, pids: &[u32]) -> (Row, run::Outcome) {
    let known = |v: Option<f64>| v.filter(|_| !pids.is_empty());
    let cpu_before = known(server::cpu_seconds_of(pids));
    let outcome = run(plan, pids);
    let cpu_after = known(server::cpu_seconds_of(pids));
    let ops = outcome.summary.ops;
    let per_op = |seconds: Option<f64>| seconds.filter(|_| ops > 0).map(|s| s * 1e6 / ops as f64);
    if let Some(t) = outcome.all_connected {
        eprintln!("{name}: all {} sessions connected after {} ms", plan.clients, t.as_millis());
    }
    let row = Row {
        target: name.to_string(),
        workload: plan.workload.name().to_string(),
        clients: plan.clients,
        pipeline: plan.pipeline,
        rate: plan.rate,
        summary: outcome.summary,
        // The whole run includes setup, warmup and cleanup: an upper bound.
        server_cpu_us_per_op: per_op(cpu_before.zip(cpu_after).map(|(before, after)| after - before)),
        server_cpu_us_per_op_window: per_op(outcome.window_cpu_s),
        server_rss_bytes: server::rss_bytes_of(pids).filter(|_| !pids.is_empty()),
    };
    (row, outcome)
}

/// Parses a CPU list such as `2-7,9`.
fn cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("--cpus: cannot parse {part:?}");
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().map_err(|_| bad())?..=b.parse::<usize>().map_err(|_| bad())?),
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

fn workloads(a: &Load) -> Result<Vec<Workload>, String> {
    if a.workload == "all" {
        return Ok(Workload::ALL.into_iter().filter(|w| *w != Workload::Populate).collect());
    }
    a.workload.split(',').map(|name| Workload::parse(name).ok_or(format!("unknown workload {name:?}"))).collect()
}

fn print_rows(a: &Load, rows: &[Row]) {
    if a.json {
        println!("{}", report::json(rows));
    } else {
        print!("{}", report::table(rows));
        println!("(latencies in microseconds; client and server share this machine unless stated otherwise; keeper-bench help run explains the columns)");
    }
}

fn cmd_run(target: &str, pids: &[u32], hdr_log: Option<&PathBuf>, a: &Load) -> Result<(), String> {
    let targets = addrs(target)?;
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for w in workloads(a)? {
        let p = plan(a, targets.clone(), w)?;
        let (row, outcome) = measured_run(target, &p, pids);
        rows.push(row);
        outcomes.push(outcome);
    }
    print_rows(a, &rows);
    let reconnects: u64 = outcomes.iter().map(|o| o.recorder.reconnects).sum();
    if reconnects > 0 && !a.json {
        println!("sessions re-attached to another server after theirs closed the connection: {reconnects} (their wait shows in max)");
    }
    if let Some(path) = hdr_log {
        report::write_hlog(path, &outcomes[0].recorder, rows[0].workload.as_str()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &a.plot {
        let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = rows.iter().zip(&outcomes).map(|(r, o)| (r.workload.clone(), &o.recorder.total)).collect();
        std::fs::write(path, plot::svg(&format!("keeper-bench against {target}"), &series)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// One side of a compare: its name, servers and pids.
struct Side {
    name: String,
    targets: Vec<SocketAddr>,
    pids: Vec<u32>,
}

fn cmd_compare(sides: [Side; 2], rounds: usize, a: &Load) -> Result<(), String> {
    let [sa, sb] = &sides;
    let mut all_rows = Vec::new();
    let mut plots: Vec<(String, hdrhistogram::Histogram<u64>)> = Vec::new();
    for w in workloads(a)? {
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        let (mut ha, mut hb) = (stats::histogram(), stats::histogram());
        for round in 0..rounds {
            if a.progress() {
                eprintln!("{}: round {}/{rounds}: {} then {}", w.name(), round + 1, sa.name, sb.name);
            }
            let (row, o) = measured_run(&sa.name, &plan(a, sa.targets.clone(), w)?, &sa.pids);
            ha.add(&o.recorder.total).expect("same bounds");
            ra.push(row);
            let (row, o) = measured_run(&sb.name, &plan(a, sb.targets.clone(), w)?, &sb.pids);
            hb.add(&o.recorder.total).expect("same bounds");
            rb.push(row);
        }
        if !a.json {
            println!("{}", report::compare_table(w.name(), &sa.name, &sb.name, &ra, &rb));
        }
        plots.push((format!("{} {}", w.name(), sa.name), ha));
        plots.push((format!("{} {}", w.name(), sb.name), hb));
        all_rows.extend(ra);
        all_rows.extend(rb);
    }
    print_rows(a, &all_rows);
    if let Some(path) = &a.plot {
        let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = plots.iter().map(|(l, h)| (l.clone(), h)).collect();
        std::fs::write(path, plot::svg(&format!("{} vs {}", sa.name, sb.name), &series)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn cmd_calibrate(dir: &std::path::Path) -> Result<(), String> {
    let rtt = calibrate::loopback_rtt(20_000).map_err(|e| format!("loopback: {e}"))?;
    let (sync, sync_cpu) = calibrate::disk_sync(dir, 300).map_err(|e| format!("disk sync in {}: {e}", dir.display()))?;
    println!("floor                         min     p50     p99   p99.9     max  (us)");
    for (name, s) in [("loopback TCP round trip", rtt), ("4 KiB write + fdatasync", sync)] {
        println!("{name:<26} {:>7} {:>7} {:>7} {:>7} {:>7}", s.min_us, s.p50_us, s.p99_us, s.p999_us, s.max_us);
    }
    println!("CPU per write + fdatasync (the issuing thread): {:.1} us", sync_cpu.as_secs_f64() * 1e6);
    println!("(disk measured in {})", dir.display());
    Ok(())
}

fn cmd_cleanup(target: &str, ns: String) -> Result<(), String> {
    let target = addrs(target)?[0];
    run::on_one_executor(move || async move {
        let mut s = conn::Session::connect(target, 30_000).await.map_err(|e| e.to_string())?;
        workload::remove_tree(&mut s, &ns).await.map_err(|e| e.to_string())?;
        s.close().await;
        Ok(())
    })
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { target, server_pid, hdr_log, load } => cmd_run(&target, &server_pid, hdr_log.as_ref(), &load),
        Command::Compare { a, b, a_name, b_name, a_pid, b_pid, rounds, load } => addrs(&a).and_then(|ta| {
            let sides = [Side { name: a_name, targets: ta, pids: a_pid }, Side { name: b_name, targets: addrs(&b)?, pids: b_pid }];
            cmd_compare(sides, rounds, &load)
        }),
        Command::Calibrate { dir } => cmd_calibrate(&dir),
        Command::Cleanup { target, namespace } => cmd_cleanup(&target, namespace),
    };
    if let Err(e) = result {
        eprintln!("keeper-bench: {e}");
        std::process::exit(1);
    }
}
