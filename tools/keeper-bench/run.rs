//! Running a workload: one glommio executor per core, each driving its share
//! of the sessions, in closed loop (`--pipeline K` outstanding per session)
//! or open loop (`--rate R`, latency measured from each operation's intended
//! send time, so a stalled server cannot hide its stall: no coordinated
//! omission).

use crate::conn::Session;
use crate::stats::{Recorder, Summary};
use crate::workload::{self, OpSource, Shape, Workload};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement, spawn_local};
use keeper::proto::codes::{EventType, OpCode, add_watch_mode};
use keeper::proto::request::Request;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Everything that defines one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The servers: client `i` uses `targets[i % len]` (an ensemble's
    /// connect string spreads the sessions); setup and cleanup use the first.
    pub targets: Vec<SocketAddr>,
    pub workload: Workload,
    pub shape: Shape,
    pub clients: usize,
    pub pipeline: usize,
    /// Open loop: total operations per second.
    pub rate: Option<f64>,
    pub watchers: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub executors: usize,
    /// CPUs the client executors may use (all online CPUs when empty).
    pub cpus: Vec<usize>,
    pub verify: bool,
    pub progress: bool,
}

impl Plan {
    /// The server client `client` talks to.
    pub fn target(&self, client: usize) -> SocketAddr {
        self.targets[client % self.targets.len()]
    }
}

/// A run's result.
pub struct Outcome {
    pub recorder: Recorder,
    pub summary: Summary,
    /// For the session storm: time until every session was connected.
    pub all_connected: Option<Duration>,
    /// Server CPU seconds used inside the measured window (timed workloads,
    /// when the server's pid is known).
    pub window_cpu_s: Option<f64>,
}

/// Fails the whole run loudly: an unexpected error means the numbers are wrong.
fn unexpected(what: String) -> ! {
    eprintln!("keeper-bench: {what}");
    std::process::exit(3);
}

/// Runs `plan` and returns what was measured; with the servers' pids, also
/// their CPU time (summed) inside the measured window.
pub fn run(plan: &Plan, server_pids: &[u32]) -> Outcome {
    setup(plan);
    let started = Instant::now();
    let measure_from = started + plan.warmup;
    // One-pass workloads, and the watch fan-out (which writes for `duration`
    // once every watcher is armed), record everything they see.
    let open_ended = matches!(plan.workload, Workload::SessionStorm | Workload::Populate | Workload::WatchFanout);
    let measure_until = if open_ended { started + Duration::from_secs(3600) } else { measure_from + plan.duration };
    let progress_ops = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        connected: AtomicUsize::new(0),
        write_times: (0..WATCH_WRITES_MAX).map(|_| AtomicU64::new(0)).collect(),
        base: started,
        writes: AtomicUsize::new(0),
        armed: AtomicUsize::new(0),
        writing_ns: AtomicU64::new(0),
    });
    let progress = (plan.progress && !open_ended).then(|| spawn_progress(progress_ops.clone(), measure_from, measure_until));
    let window_cpu = (!server_pids.is_empty() && !open_ended).then(|| spawn_cpu_window(server_pids.to_vec(), measure_from, measure_until));
    let plan_arc = Arc::new(plan.clone());
    let executors = plan.executors.max(1);
    let cpu_set = (!plan.cpus.is_empty()).then(|| {
        let allowed = plan.cpus.clone();
        glommio::CpuSet::online().unwrap_or_else(|e| unexpected(format!("cannot read the CPU topology: {e}"))).filter(move |l| allowed.contains(&l.cpu))
    });
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(executors, cpu_set))
        .name("keeper-bench")
        .on_all_shards({
            let (plan, progress_ops, shared) = (plan_arc.clone(), progress_ops.clone(), shared.clone());
            let next_index = Arc::new(AtomicUsize::new(0));
            move || async move {
                let me = next_index.fetch_add(1, Ordering::SeqCst);
                drive(plan, me, executors, measure_from, measure_until, progress_ops, shared).await
            }
        })
        .unwrap_or_else(|e| unexpected(format!("cannot start executors: {e}")));
    let mut total = Recorder::new(measure_from, measure_until);
    for r in handles.join_all() {
        total.merge(&r.unwrap_or_else(|e| unexpected(format!("an executor failed: {e}"))));
    }
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        let _ = p.join();
    }
    let all_connected = (plan.workload == Workload::SessionStorm).then(|| Duration::from_micros(total.total.max()));
    // One-pass workloads are measured over the time they took; the fan-out
    // over the time its writer wrote.
    let window = match plan.workload {
        Workload::SessionStorm | Workload::Populate => elapsed,
        Workload::WatchFanout => Duration::from_nanos(shared.writing_ns.load(Ordering::SeqCst).max(1)),
        _ => total.window(),
    };
    let summary = Summary::of(&total.total, window, total.errors);
    let window_cpu_s = window_cpu.and_then(|t| t.join().ok().flatten());
    finish(plan);
    Outcome { recorder: total, summary, all_connected, window_cpu_s }
}

/// Reads the server's CPU time when the measured window opens and when it
/// closes: what setup, warmup and cleanup cost is left out.
fn spawn_cpu_window(pids: Vec<u32>, from: Instant, until: Instant) -> std::thread::JoinHandle<Option<f64>> {
    std::thread::spawn(move || {
        std::thread::sleep(from.saturating_duration_since(Instant::now()));
        let start = crate::server::cpu_seconds_of(&pids)?;
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        Some(crate::server::cpu_seconds_of(&pids)? - start)
    })
}

/// How many writes the watch fan-out workload makes at most.
const WATCH_WRITES_MAX: usize = 100_000;

/// State shared by every executor of a run.
struct Shared {
    connected: AtomicUsize,
    /// Watch fan-out: when write k was sent, in ns since `base`.
    write_times: Vec<AtomicU64>,
    base: Instant,
    writes: AtomicUsize,
    /// Watch fan-out: watchers with their persistent watch in place.
    armed: AtomicUsize,
    /// Watch fan-out: how long the writer wrote, in ns; 0 while it writes.
    writing_ns: AtomicU64,
}

fn setup(plan: &Plan) {
    let (target, workload, shape) = (plan.targets[0], plan.workload, plan.shape.clone());
    on_one_executor(move || async move {
        let mut s = Session::connect(target, 30_000).await.unwrap_or_else(|e| unexpected(format!("cannot connect to {target}: {e}")));
        let result = workload::prepare(&mut s, workload, &shape).await;
        s.close().await;
        result.unwrap_or_else(|e| unexpected(format!("preparing {} failed: {e}", shape.namespace)));
    });
}

fn finish(plan: &Plan) {
    let (target, plan2) = (plan.targets[0], plan.clone());
    on_one_executor(move || async move {
        let mut s = Session::connect(target, 30_000).await.unwrap_or_else(|e| unexpected(format!("cannot connect to {target}: {e}")));
        if plan2.verify {
            crate::verify::check(&mut s, &plan2).await.unwrap_or_else(|e| unexpected(format!("verify failed: {e}")));
        }
        if plan2.workload != Workload::Populate {
            workload::remove_tree(&mut s, &plan2.shape.namespace)
                .await
                .unwrap_or_else(|e| unexpected(format!("removing {} failed: {e}", plan2.shape.namespace)));
        }
        s.close().await;
    });
}

/// Runs a future (made on the executor's thread) on a fresh executor and waits for its result.
pub fn on_one_executor<T, F, G>(make: G) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
    G: FnOnce() -> F + Send + 'static,
{
    glommio::LocalExecutorBuilder::default().spawn(make).and_then(|h| h.join()).unwrap_or_else(|e| unexpected(format!("executor failed: {e}")))
}

/// A live line on the terminal (the plan asks for one only when stderr is
/// a terminal): ops/s over the last second and the time left; cleared at the end.
fn spawn_progress(ops: Arc<AtomicU64>, from: Instant, until: Instant) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new_spinner();
        let mut last = 0;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = Instant::now();
            if now >= until {
                bar.finish_and_clear();
                return;
            }
            let total = ops.load(Ordering::Relaxed);
            let phase = if now < from { "warmup" } else { "measuring" };
            bar.set_message(format!("{phase}: {:>8} ops/s, {:>4.0} s left", total - last, (until - now).as_secs_f64()));
            bar.tick();
            last = total;
        }
    })
}

/// One executor's share of the run.
async fn drive(plan: Arc<Plan>, me: usize, executors: usize, from: Instant, until: Instant, progress: Arc<AtomicU64>, shared: Arc<Shared>) -> Recorder {
    let rec = Rc::new(RefCell::new(Recorder::new(from, until)));
    let mine: Vec<usize> = (0..plan.clients).filter(|c| c % executors == me).collect();
    let mut tasks = Vec::new();
    for client in mine {
        let (plan, rec, progress, shared) = (plan.clone(), rec.clone(), progress.clone(), shared.clone());
        tasks.push(spawn_local(async move {
            match plan.workload {
                Workload::Churn => churn(&plan, client, &rec, until, &progress).await,
                Workload::SessionStorm => storm(&plan, client, &rec, &shared).await,
                Workload::WatchFanout => watch_fanout(&plan, client, &rec, &shared).await,
                _ => requests(&plan, client, &rec, until, &progress).await,
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    Rc::try_unwrap(rec).ok().expect("all tasks finished").into_inner()
}

fn check_reply(workload: Workload, reply: &crate::conn::Reply) {
    let ok = reply.header.err == 0 || (workload == Workload::Delete && reply.header.err == keeper::proto::codes::ErrorCode::NoNode.code());
    if !ok {
        unexpected(format!("{} got error {} (xid {})", workload.name(), reply.header.err, reply.header.xid));
    }
}

/// Requests one open-loop session may have outstanding.
const OPEN_LOOP_OUTSTANDING_MAX: usize = 1024;

/// The open-loop schedule of one session: operation k is intended at
/// `start + k / rate`. An operation that goes out late keeps its intended
/// time, so its latency includes the wait (no coordinated omission).
pub struct Pacer {
    next: Instant,
    interval: Duration,
}

impl Pacer {
    /// A schedule of `rate` operations per second from `start`.
    pub fn new(start: Instant, rate: f64) -> Pacer {
        assert!(rate > 0.0, "an open-loop rate is positive");
        Pacer { next: start, interval: Duration::from_secs_f64(1.0 / rate) }
    }

    /// The intended time of the next operation if it is due at `now`.
    pub fn due(&mut self, now: Instant) -> Option<Instant> {
        if self.next > now {
            return None;
        }
        let at = self.next;
        self.next += self.interval;
        Some(at)
    }

    /// When the next operation is due.
    pub fn next(&self) -> Instant {
        self.next
    }
}

/// A request sent and not yet answered: kept whole, to send again after a fail-over.
struct InFlight {
    xid: i32,
    start: Instant,
    op: OpCode,
    req: Request,
}

/// How long a session looks for a server that takes it back.
const FAIL_OVER_FOR: Duration = Duration::from_secs(30);

/// The session's server closed the connection (a server stopping answers
/// every request it read first, then closes): with several targets, the
/// session re-attaches to the next one that takes it and sends again what
/// was not answered; with one, or when no server takes it back, the run
/// stops with the error. A request keeps its start time, so the wait shows
/// in its latency.
async fn fail_over(plan: &Plan, client: usize, s: &mut Session, inflight: &mut VecDeque<InFlight>, rec: &RefCell<Recorder>, why: String) {
    if plan.targets.len() < 2 {
        unexpected(format!("client {client}: {why}"));
    }
    let what = format!("{why}; no server took the session back within {FAIL_OVER_FOR:?}");
    first_server_that(plan, client, 1, &what, async |addr| s.reattach(addr).await).await;
    rec.borrow_mut().reconnects += 1;
    for f in inflight.iter_mut() {
        f.xid = s.queue(f.op, &f.req);
    }
}

/// A new session on the client's server, or (with several targets, for
/// up to [`FAIL_OVER_FOR`]) on the next one that takes it.
async fn connect_any(plan: &Plan, client: usize) -> Session {
    first_server_that(plan, client, 0, "cannot connect", async |addr| Session::connect(addr, 30_000).await).await
}

/// Tries `attempt` on the client's targets in turn, from its own plus
/// `skip`, until one succeeds. With one target its first failure ends the
/// run, with several the failure after [`FAIL_OVER_FOR`] does (saying `what`).
async fn first_server_that<T>(plan: &Plan, client: usize, skip: usize, what: &str, mut attempt: impl AsyncFnMut(SocketAddr) -> std::io::Result<T>) -> T {
    let deadline = Instant::now() + FAIL_OVER_FOR;
    for n in skip.. {
        let addr = plan.targets[(client + n) % plan.targets.len()];
        match attempt(addr).await {
            Ok(done) => return done,
            Err(e) if plan.targets.len() < 2 || Instant::now() >= deadline => unexpected(format!("client {client}: {what} (last: {addr}: {e})")),
            Err(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    eprintln!("keeper-bench: client {client}: {e}; trying the next server");
                }
                glommio::timer::sleep(Duration::from_millis(20)).await
            }
        }
    }
    unreachable!("the attempts go on until one succeeds or the run ends")
}

/// The request loop: closed (pipeline) or open (rate), on one session.
async fn requests(plan: &Plan, client: usize, rec: &RefCell<Recorder>, until: Instant, progress: &AtomicU64) {
    let mut s = connect_any(plan, client).await;
    let mut source = OpSource::new(plan.workload, &plan.shape, client, plan.clients);
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut pacer = plan.rate.map(|r| Pacer::new(Instant::now(), r / plan.clients as f64));
    // Open loop keeps sending what is due however many replies are pending.
    let outstanding_max = if pacer.is_some() { OPEN_LOOP_OUTSTANDING_MAX } else { plan.pipeline.max(1) };
    let mut exhausted = false;
    loop {
        let now = Instant::now();
        let window_open = now < until && !exhausted;
        // Send: closed loop fills the pipeline; open loop sends what is due.
        while window_open && inflight.len() < outstanding_max {
            let start = match pacer.as_mut() {
                None => Instant::now(),
                Some(p) => match p.due(Instant::now()) {
                    Some(intended) => intended,
                    None => break,
                },
            };
            let Some((op, req)) = source.next() else {
                exhausted = true;
                break;
            };
            let xid = s.queue(op, &req);
            inflight.push_back(InFlight { xid, start, op, req });
        }
        if let Err(e) = s.flush().await {
            fail_over(plan, client, &mut s, &mut inflight, rec, format!("send failed: {e}")).await;
            continue;
        }
        if inflight.is_empty() {
            if !window_open {
                break;
            }
            // Open loop with nothing outstanding: wait for the next send time.
            let next = pacer.as_ref().map_or_else(Instant::now, Pacer::next);
            glommio::timer::sleep(next.saturating_duration_since(Instant::now())).await;
            continue;
        }
        let reply = match s.recv().await {
            Ok(reply) => reply,
            Err(e) => {
                fail_over(plan, client, &mut s, &mut inflight, rec, format!("receive failed: {e}")).await;
                continue;
            }
        };
        if reply.header.xid < 0 {
            continue;
        }
        let InFlight { xid, start, .. } = inflight.pop_front().expect("a reply matches a request");
        if xid != reply.header.xid {
            unexpected(format!("client {client}: reply for xid {} while waiting for {xid}", reply.header.xid));
        }
        check_reply(plan.workload, &reply);
        rec.borrow_mut().record(start, Instant::now());
        progress.fetch_add(1, Ordering::Relaxed);
    }
    s.close().await;
}

/// Ephemeral churn: connect, create an ephemeral node, close; one cycle is one op.
async fn churn(plan: &Plan, client: usize, rec: &RefCell<Recorder>, until: Instant, progress: &AtomicU64) {
    let data = plan.shape.data();
    while Instant::now() < until {
        let start = Instant::now();
        let mut s = Session::connect(plan.target(client), 10_000).await.unwrap_or_else(|e| unexpected(format!("churn client {client} cannot connect: {e}")));
        let (op, req) = workload::create(format!("{}/e-", plan.shape.ephemeral_dir()), data.clone(), 3);
        let reply = s.call(op, &req).await.unwrap_or_else(|e| unexpected(format!("churn create failed: {e}")));
        check_reply(plan.workload, &reply);
        s.close().await;
        rec.borrow_mut().record(start, Instant::now());
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Session storm: every session connects at once; each connect is one op.
async fn storm(plan: &Plan, client: usize, rec: &RefCell<Recorder>, shared: &Shared) {
    let start = shared.base;
    let s = Session::connect(plan.target(client), 30_000).await.unwrap_or_else(|e| unexpected(format!("storm session cannot connect: {e}")));
    rec.borrow_mut().record(start, Instant::now());
    shared.connected.fetch_add(1, Ordering::SeqCst);
    while shared.connected.load(Ordering::SeqCst) < plan.clients {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    s.close().await;
}

/// Watch fan-out: once every watcher holds a persistent watch on one node,
/// client 0 writes it every 10 ms for `duration`. Latency: from the write
/// being sent to each notification (measuring from the write's reply would go
/// negative for watchers told before the writer).
async fn watch_fanout(plan: &Plan, client: usize, rec: &RefCell<Recorder>, shared: &Shared) {
    let mut s = Session::connect(plan.target(client), 30_000).await.unwrap_or_else(|e| unexpected(format!("watch client {client} cannot connect: {e}")));
    let path = plan.shape.watched();
    if client == 0 {
        while shared.armed.load(Ordering::SeqCst) < plan.clients - 1 {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let data = plan.shape.data();
        let started = Instant::now();
        let until = started + plan.duration;
        let mut k = 0;
        while Instant::now() < until && k < WATCH_WRITES_MAX {
            shared.write_times[k].store(shared.base.elapsed().as_nanos() as u64, Ordering::SeqCst);
            shared.writes.store(k + 1, Ordering::SeqCst);
            let reply = s
                .call(OpCode::SetData, &Request::SetData { path: path.clone(), data: Some(data.clone()), version: -1 })
                .await
                .unwrap_or_else(|e| unexpected(format!("watch writer failed: {e}")));
            check_reply(plan.workload, &reply);
            k += 1;
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        shared.writing_ns.store(started.elapsed().as_nanos().max(1) as u64, Ordering::SeqCst);
        s.close().await;
        return;
    }
    let reply = s
        .call(OpCode::AddWatch, &Request::AddWatch { path: path.clone(), mode: add_watch_mode::PERSISTENT })
        .await
        .unwrap_or_else(|e| unexpected(format!("addWatch failed: {e}")));
    check_reply(plan.workload, &reply);
    shared.armed.fetch_add(1, Ordering::SeqCst);
    let mut seen = 0usize;
    loop {
        if shared.writing_ns.load(Ordering::SeqCst) > 0 && seen >= shared.writes.load(Ordering::SeqCst) {
            break;
        }
        // Wake up now and then to notice the writer has finished.
        let ping_deadline = glommio::timer::sleep(Duration::from_millis(200));
        let event = futures_lite::future::or(async { Some(s.recv().await) }, async {
            ping_deadline.await;
            None
        })
        .await;
        let Some(reply) = event else { continue };
        let reply = reply.unwrap_or_else(|e| unexpected(format!("watcher {client} failed: {e}")));
        if reply.header.xid != -1 {
            continue;
        }
        let mut body = reply.body;
        let kind = body.int().unwrap_or(0);
        if kind != EventType::NodeDataChanged as i32 {
            continue;
        }
        let sent = shared.write_times[seen.min(WATCH_WRITES_MAX - 1)].load(Ordering::SeqCst);
        let sent_at = shared.base + Duration::from_nanos(sent);
        rec.borrow_mut().record(sent_at, Instant::now());
        seen += 1;
    }
    s.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_keeps_intended_times_when_behind() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1000.0);
        // 10.5 ms late: eleven operations are due, each at its own intended time.
        let now = t0 + Duration::from_micros(10_500);
        let due: Vec<Instant> = std::iter::from_fn(|| p.due(now)).collect();
        assert_eq!(due.len(), 11);
        for (k, at) in due.iter().enumerate() {
            assert_eq!(*at, t0 + Duration::from_millis(k as u64));
        }
        assert_eq!(p.next(), t0 + Duration::from_millis(11));
        assert_eq!(p.due(now), None);
    }
}
