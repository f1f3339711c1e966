//! A real keeper ensemble for tests: N `keeper serve` processes on loopback
//! ports, each with its own data directory and zoo.cfg, started, killed,
//! paused, resumed, wiped and restarted by pid. Every process is killed
//! when the ensemble drops, also when the test fails.

use super::{four_letter, temp_dir};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an ensemble gets to elect a leader, and a server to serve.
pub const SETTLE: Duration = Duration::from_secs(20);

/// One server of the ensemble.
pub struct Server {
    pub id: u8,
    pub client_port: u16,
    pub peer_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    /// Stopped with SIGSTOP (so it must get SIGCONT before it can be killed cleanly).
    paused: bool,
}

impl Server {
    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The client address.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    /// What `srvr` says the server's mode is ("" when it does not answer).
    pub fn mode(&self) -> String {
        four_letter(self.client_port, "srvr").lines().find_map(|l| l.strip_prefix("Mode: ").map(str::to_string)).unwrap_or_default()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keeper.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// A running ensemble.
pub struct Ensemble {
    pub servers: Vec<Server>,
    dir: PathBuf,
    /// With `start_proxied`: the proxy carrying what server a sends to server b, by (a, b) indexes.
    proxies: HashMap<(usize, usize), Proxy>,
}

/// A loopback TCP proxy in front of one server's peer port, for one other
/// server's links to it: cutting it drops the links and refuses new ones
/// (a network partition between the two, one way).
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, stop, open) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (c, st, o) = (cut.clone(), stop.clone(), open.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((inbound, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if c.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target_port)) else { continue };
                inbound.set_nonblocking(false).unwrap();
                let mut open = o.lock().unwrap();
                open.push(inbound.try_clone().unwrap());
                open.push(outbound.try_clone().unwrap());
                pump(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pump(outbound, inbound);
            }
        });
        Proxy { port, cut, stop, open }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
        if cut {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.set_cut(true);
    }
}

/// Copies bytes from one socket to the other until either end closes.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Ensemble {
    /// Starts `n` servers (all participants) with `extra` zoo.cfg lines, and
    /// waits until they serve under one leader.
    pub fn start(name: &str, n: usize, extra: &str) -> Ensemble {
        Ensemble::start_with(name, n, 0, &|_| extra.to_string(), false)
    }

    /// `n` participants, each with the zoo.cfg lines `extra` gives for its id.
    pub fn start_each(name: &str, n: usize, extra: &dyn Fn(u8) -> String) -> Ensemble {
        Ensemble::start_with(name, n, 0, extra, false)
    }

    /// `n` participants and `observers` observers (the last servers).
    pub fn start_with_observers(name: &str, n: usize, observers: usize, extra: &str) -> Ensemble {
        Ensemble::start_with(name, n, observers, &|_| extra.to_string(), false)
    }

    /// Like `start`, but each server reaches every other through a proxy
    /// of its own, so the test can cut links ([`Ensemble::partition`]).
    /// (Servers' configurations then name different peer addresses, as
    /// they may.)
    pub fn start_proxied(name: &str, n: usize, extra: &str) -> Ensemble {
        Ensemble::start_with(name, n, 0, &|_| extra.to_string(), true)
    }

    fn start_with(name: &str, participants: usize, observers: usize, extra: &dyn Fn(u8) -> String, proxied: bool) -> Ensemble {
        let n = participants + observers;
        let dir = temp_dir(name);
        // Client, peer and election port of each server, all distinct.
        let ports = super::free_ports(3 * n);
        let servers: Vec<Server> = (1..=n as u8)
            .map(|id| {
                let at = 3 * (id as usize - 1);
                Server { id, client_port: ports[at], peer_port: ports[at + 1], dir: dir.join(format!("s{id}")), child: None, paused: false }
            })
            .collect();
        let mut proxies = HashMap::new();
        if proxied {
            for a in 0..n {
                for b in (0..n).filter(|&b| b != a) {
                    proxies.insert((a, b), Proxy::start(servers[b].peer_port));
                }
            }
        }
        let election_ports: Vec<u16> = (0..n).map(|i| ports[3 * i + 2]).collect();
        for (a, s) in servers.iter().enumerate() {
            let lines: String = servers
                .iter()
                .enumerate()
                .map(|(b, t)| {
                    let port = proxies.get(&(a, b)).map_or(t.peer_port, |p| p.port);
                    let role = if b >= participants { ":observer" } else { "" };
                    format!("server.{}=127.0.0.1:{port}:{}{role}\n", t.id, election_ports[b])
                })
                .collect();
            std::fs::create_dir_all(s.data_dir()).unwrap();
            std::fs::write(s.data_dir().join("myid"), format!("{}\n", s.id)).unwrap();
            let cfg = format!(
                "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{lines}{extra}\n",
                s.data_dir().display(),
                s.client_port,
                extra = extra(s.id)
            );
            std::fs::write(s.dir.join("zoo.cfg"), cfg).unwrap();
        }
        let mut ensemble = Ensemble { servers, dir, proxies };
        for i in 0..n {
            ensemble.spawn(i);
        }
        for i in 0..n {
            ensemble.wait_serving(i);
        }
        ensemble.leader();
        ensemble
    }

    /// Starts server `i` and waits until it serves (it knows a leader).
    fn launch(&mut self, i: usize) {
        self.spawn(i);
        self.wait_serving(i);
    }

    fn spawn(&mut self, i: usize) {
        let s = &mut self.servers[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(s.dir.join("keeper.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_keeper"))
            .args(["serve", "--config"])
            .arg(s.dir.join("zoo.cfg"))
            .args(["--shards", "1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("keeper binary starts");
        s.child = Some(child);
        s.paused = false;
    }

    fn wait_serving(&self, i: usize) {
        let deadline = Instant::now() + SETTLE;
        while self.servers[i].mode().is_empty() {
            assert!(Instant::now() < deadline, "server {} did not serve; log:\n{}", i + 1, self.servers[i].log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The index of the leader, once exactly one running server says it leads.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + SETTLE;
        loop {
            let leaders: Vec<usize> = (0..self.servers.len()).filter(|&i| self.is_up(i) && self.servers[i].mode() == "leader").collect();
            if let [one] = leaders[..] {
                return one;
            }
            assert!(Instant::now() < deadline, "no single leader within {SETTLE:?} (leaders: {leaders:?}); logs:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Indexes of the running servers other than `i`.
    pub fn others(&self, i: usize) -> Vec<usize> {
        (0..self.servers.len()).filter(|&j| j != i && self.is_up(j)).collect()
    }

    /// Whether server `i`'s process has exited by itself (it is then down).
    pub fn exited(&mut self, i: usize) -> bool {
        let gone = self.servers[i].child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_some());
        if gone {
            self.servers[i].child = None;
        }
        gone
    }

    /// Whether server `i` is running and not paused.
    pub fn is_up(&self, i: usize) -> bool {
        self.servers[i].child.is_some() && !self.servers[i].paused
    }

    /// kill -9 of server `i`, waiting for it to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.servers[i].paused = false;
    }

    /// SIGTERM to server `i`; waits up to 15 s for it to exit and returns
    /// how it exited (None: it did not, and was killed).
    pub fn terminate(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let mut child = self.servers[i].child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts server `i` again on its data.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i);
    }

    /// kill -9 of server `i`, then its data directory wiped (its myid kept), then a start.
    pub fn wipe_and_restart(&mut self, i: usize) {
        self.kill(i);
        let data = self.servers[i].data_dir();
        std::fs::remove_dir_all(&data).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{}\n", self.servers[i].id)).unwrap();
        self.launch(i);
    }

    /// Cuts (or heals) every link between server `i` and the others, both ways.
    pub fn partition(&mut self, i: usize, cut: bool) {
        assert!(!self.proxies.is_empty(), "partitions need an ensemble started with start_proxied");
        for ((a, b), proxy) in &self.proxies {
            if *a == i || *b == i {
                proxy.set_cut(cut);
            }
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT of server `i`.
    pub fn signal(&mut self, i: usize, pause: bool) {
        let pid = self.servers[i].pid().expect("the server runs");
        let status = Command::new("kill").arg(if pause { "-STOP" } else { "-CONT" }).arg(pid.to_string()).status().unwrap();
        assert!(status.success());
        self.servers[i].paused = pause;
    }

    /// Every server's log, for failure messages.
    pub fn logs(&self) -> String {
        self.servers.iter().map(|s| format!("---- server {} ----\n{}", s.id, s.log())).collect()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            if self.servers[i].paused
                && let Some(pid) = self.servers[i].pid()
            {
                let _ = Command::new("kill").arg("-CONT").arg(pid.to_string()).status();
            }
            self.kill(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
