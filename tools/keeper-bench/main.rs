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
//! One glommio executor per core drives the sessions (`--executors`).

mod calibrate;
mod conn;
mod plot;
mod report;
mod run;
mod server;
mod stats;
mod verify;
mod workload;

use report::Row;
use run::{Plan, run};
use std::net::SocketAddr;
use std::time::Duration;
use workload::{Shape, Workload};

const USAGE: &str = "usage:
  keeper-bench run --target HOST:PORT[,HOST:PORT...] --workload W [options]
  keeper-bench compare --a HOSTS --b HOSTS [--a-name N] [--b-name N] [--a-pid PID[,PID...]] [--b-pid PID[,PID...]]
                       [--rounds R] --workload W|all [options]
  keeper-bench calibrate [--dir DIR]
  keeper-bench cleanup --target HOST:PORT --namespace PATH

workloads: get set create delete exists getchildren multi mixed churn watch storm populate
options:
  --clients N        sessions (default 16)          --pipeline K      outstanding per session (default 1)
  --rate R           open loop: R ops/s in total    --size B          bytes per node (default 100)
  --nodes N          node set / populate count (default 1000)
  --width N          children of the wide node (getchildren, default 1000)
  --read-pct P       reads in mixed (default 90)    --multi-ops N     ops per multi (default 4)
  --watchers N       watch fan-out sessions (default 1000)
  --warmup S         seconds not measured (default 2)   --duration S  seconds measured (default 10)
  --executors N      client cores (default: all, or as many as --cpus names)    --verify  read back what was written
  --cpus A-B[,C]     CPUs the client may use (keep it off the server's cores)
  --server-pid PID[,PID...]  report server CPU per op and RSS (summed over an ensemble's servers)
  --json             JSON instead of a table
  (several HOST:PORTs, an ensemble's connect string: client i talks to server i mod N)
  --hdr-log FILE     HdrHistogram interval log      --plot FILE.svg   latency percentile plot
  --namespace PATH   populate: where (default a fresh /keeper-bench-...)  --no-progress";

/// Parsed command-line options.
struct Args {
    values: std::collections::HashMap<String, String>,
    flags: std::collections::HashSet<String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Args, String> {
        const FLAGS: [&str; 3] = ["--verify", "--json", "--no-progress"];
        let mut a = Args { values: Default::default(), flags: Default::default() };
        let mut it = args.iter();
        while let Some(k) = it.next() {
            if FLAGS.contains(&k.as_str()) {
                a.flags.insert(k.clone());
            } else if k.starts_with("--") {
                let v = it.next().ok_or(format!("{k} needs a value"))?;
                a.values.insert(k.clone(), v.clone());
            } else {
                return Err(format!("unexpected argument {k:?}"));
            }
        }
        Ok(a)
    }

    fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{key}: cannot parse {v:?}")),
        }
    }

    fn opt<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.values.get(key).map(|v| v.parse().map_err(|_| format!("{key}: cannot parse {v:?}"))).transpose()
    }

    fn flag(&self, key: &str) -> bool {
        self.flags.contains(key)
    }
}

/// `HOST:PORT[,HOST:PORT...]`: one server, or an ensemble's connect string.
fn addrs(s: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    s.split(',').map(|one| one.to_socket_addrs().map_err(|e| format!("{one}: {e}"))?.next().ok_or(format!("{one}: no address"))).collect()
}

/// `PID[,PID...]`: the server processes whose CPU and memory a run reports (summed).
fn pids(a: &Args, key: &str) -> Result<Vec<u32>, String> {
    match a.values.get(key) {
        None => Ok(Vec::new()),
        Some(list) => list.split(',').map(|p| p.parse::<u32>().map_err(|_| format!("{key}: expected pids, got {list:?}"))).collect(),
    }
}

fn plan(a: &Args, targets: Vec<SocketAddr>, workload: Workload) -> Result<Plan, String> {
    let unique = format!("/keeper-bench-{}-{}", std::process::id(), keeper::runtime::wall_ms() % 1_000_000);
    // Populate leaves its nodes behind (for memory and restart measurements):
    // by default in a fresh namespace, so repeated runs never collide.
    let namespace = match workload {
        Workload::Populate => a.get("--namespace", format!("{unique}-populate"))?,
        _ => unique,
    };
    let shape = Shape {
        namespace,
        nodes: a.get("--nodes", 1000)?,
        size: a.get("--size", 100)?,
        width: a.get("--width", 1000)?,
        multi_ops: a.get("--multi-ops", 4)?,
        read_pct: a.get("--read-pct", 90)?,
    };
    let cpus = cpu_list(a.values.get("--cpus").map(String::as_str).unwrap_or(""))?;
    // One executor per core the client may use: all of them, or those --cpus names.
    let cores = if cpus.is_empty() { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { cpus.len() };
    let mut p = Plan {
        targets,
        workload,
        shape,
        clients: a.get("--clients", 16)?,
        pipeline: a.get("--pipeline", 1)?,
        rate: a.opt("--rate")?,
        watchers: a.get("--watchers", 1000)?,
        warmup: Duration::from_secs_f64(a.get("--warmup", 2.0)?),
        duration: Duration::from_secs_f64(a.get("--duration", 10.0)?),
        executors: a.get("--executors", cores)?,
        cpus,
        verify: a.flag("--verify"),
        progress: !a.flag("--no-progress") && !a.flag("--json"),
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

fn workloads(a: &Args) -> Result<Vec<Workload>, String> {
    let w = a.values.get("--workload").ok_or("--workload is required")?;
    if w == "all" {
        return Ok(Workload::ALL.into_iter().filter(|w| *w != Workload::Populate).collect());
    }
    w.split(',').map(|name| Workload::parse(name).ok_or(format!("unknown workload {name:?}"))).collect()
}

fn print_rows(a: &Args, rows: &[Row]) {
    if a.flag("--json") {
        println!("{}", report::json(rows));
    } else {
        println!("{}", report::header());
        for r in rows {
            println!("{}", report::line(r));
        }
        println!("(latencies in microseconds; client and server share this machine unless stated otherwise)");
    }
}

fn cmd_run(a: &Args) -> Result<(), String> {
    let target = a.values.get("--target").ok_or("--target is required")?.clone();
    let targets = addrs(&target)?;
    let pids = pids(a, "--server-pid")?;
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for w in workloads(a)? {
        let p = plan(a, targets.clone(), w)?;
        let (row, outcome) = measured_run(&target, &p, &pids);
        rows.push(row);
        outcomes.push(outcome);
    }
    print_rows(a, &rows);
    let reconnects: u64 = outcomes.iter().map(|o| o.recorder.reconnects).sum();
    if reconnects > 0 && !a.flag("--json") {
        println!("sessions re-attached to another server after theirs closed the connection: {reconnects} (their wait shows in max)");
    }
    if let Some(path) = a.values.get("--hdr-log") {
        report::write_hlog(std::path::Path::new(path), &outcomes[0].recorder, rows[0].workload.as_str()).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = a.values.get("--plot") {
        let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = rows.iter().zip(&outcomes).map(|(r, o)| (r.workload.clone(), &o.recorder.total)).collect();
        std::fs::write(path, plot::svg(&format!("keeper-bench against {target}"), &series)).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

fn cmd_compare(a: &Args) -> Result<(), String> {
    let ta = addrs(a.values.get("--a").ok_or("--a is required")?)?;
    let tb = addrs(a.values.get("--b").ok_or("--b is required")?)?;
    let (na, nb) = (a.get("--a-name", "A".to_string())?, a.get("--b-name", "B".to_string())?);
    let (pa, pb) = (pids(a, "--a-pid")?, pids(a, "--b-pid")?);
    let rounds: usize = a.get("--rounds", 3)?;
    let mut all_rows = Vec::new();
    let mut plots: Vec<(String, hdrhistogram::Histogram<u64>)> = Vec::new();
    for w in workloads(a)? {
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        let (mut ha, mut hb) = (stats::histogram(), stats::histogram());
        for round in 0..rounds {
            eprintln!("{}: round {}/{rounds}: {na} then {nb}", w.name(), round + 1);
            let (row, o) = measured_run(&na, &plan(a, ta.clone(), w)?, &pa);
            ha.add(&o.recorder.total).expect("same bounds");
            ra.push(row);
            let (row, o) = measured_run(&nb, &plan(a, tb.clone(), w)?, &pb);
            hb.add(&o.recorder.total).expect("same bounds");
            rb.push(row);
        }
        if !a.flag("--json") {
            println!("{}", report::compare_table(w.name(), &na, &nb, &ra, &rb));
        }
        plots.push((format!("{} {na}", w.name()), ha));
        plots.push((format!("{} {nb}", w.name()), hb));
        all_rows.extend(ra);
        all_rows.extend(rb);
    }
    print_rows(a, &all_rows);
    if let Some(path) = a.values.get("--plot") {
        let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = plots.iter().map(|(l, h)| (l.clone(), h)).collect();
        std::fs::write(path, plot::svg(&format!("{na} vs {nb}"), &series)).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

fn cmd_calibrate(a: &Args) -> Result<(), String> {
    let dir = std::path::PathBuf::from(a.get("--dir", ".".to_string())?);
    let rtt = calibrate::loopback_rtt(20_000).map_err(|e| format!("loopback: {e}"))?;
    let (sync, sync_cpu) = calibrate::disk_sync(&dir, 300).map_err(|e| format!("disk sync in {}: {e}", dir.display()))?;
    println!("floor                         min     p50     p99   p99.9     max  (us)");
    for (name, s) in [("loopback TCP round trip", rtt), ("4 KiB write + fdatasync", sync)] {
        println!("{name:<26} {:>7} {:>7} {:>7} {:>7} {:>7}", s.min_us, s.p50_us, s.p99_us, s.p999_us, s.max_us);
    }
    println!("CPU per write + fdatasync (the issuing thread): {:.1} us", sync_cpu.as_secs_f64() * 1e6);
    println!("(disk measured in {})", dir.display());
    Ok(())
}

fn cmd_cleanup(a: &Args) -> Result<(), String> {
    let target = addrs(a.values.get("--target").ok_or("--target is required")?)?[0];
    let ns = a.values.get("--namespace").ok_or("--namespace is required")?.clone();
    run::on_one_executor(move || async move {
        let mut s = conn::Session::connect(target, 30_000).await.map_err(|e| e.to_string())?;
        workload::remove_tree(&mut s, &ns).await.map_err(|e| e.to_string())?;
        s.close().await;
        Ok(())
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let result = Args::parse(rest).and_then(|a| match cmd.as_str() {
        "run" => cmd_run(&a),
        "compare" => cmd_compare(&a),
        "calibrate" => cmd_calibrate(&a),
        "cleanup" => cmd_cleanup(&a),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    });
    if let Err(e) = result {
        eprintln!("keeper-bench: {e}");
        std::process::exit(1);
    }
}
