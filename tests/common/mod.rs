//! Shared test support: start a real `keeper serve` process on a free
//! loopback port with its own data directory, wait until it serves, and stop
//! it (kill -9 or graceful) when the handle drops.

#![allow(dead_code)]

pub mod ensemble;
pub mod raw;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server gets to start serving.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A free loopback port (bound then released; the race is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `n` distinct free loopback ports: all held at once while they are
/// chosen (one at a time, the kernel may hand out the same port twice).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keeper-test-{name}-{}-{}", std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running keeper server.
pub struct Keeper {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    /// Extra zoo.cfg lines the server was started with.
    pub extra: String,
    pub shards: usize,
    /// Run under `taskset -c 0`: the shard and broadcast cores share one CPU.
    pub one_cpu: bool,
}

impl Keeper {
    /// Starts a server with default settings (all 4lw allowed, TTL enabled).
    pub fn start(name: &str) -> Keeper {
        Keeper::start_with(name, "", 1)
    }

    /// Starts a server with extra zoo.cfg lines and a shard count.
    pub fn start_with(name: &str, extra: &str, shards: usize) -> Keeper {
        let dir = temp_dir(name);
        let mut k = Keeper { child: None, port: free_port(), dir, extra: extra.to_string(), shards, one_cpu: false };
        k.launch();
        k
    }

    /// Starts a server on a copy of `data` (a `keeper-v1` directory) as its
    /// dataDir's contents.
    pub fn start_with_data(name: &str, extra: &str, data: &Path) -> Keeper {
        let dir = temp_dir(name);
        copy_dir(data, &dir.join("data").join("keeper-v1"));
        let mut k = Keeper { child: None, port: free_port(), dir, extra: extra.to_string(), shards: 1, one_cpu: false };
        k.launch();
        k
    }

    /// Starts a server confined to CPU 0, with extra zoo.cfg lines.
    pub fn start_on_one_cpu(name: &str, extra: &str) -> Keeper {
        let dir = temp_dir(name);
        let mut k = Keeper { child: None, port: free_port(), dir, extra: extra.to_string(), shards: 1, one_cpu: true };
        k.launch();
        k
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// The `host:port` string clients connect to.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    fn launch(&mut self) {
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\npreAllocSize=1024\n{}\n",
            self.dir.join("data").display(),
            self.port,
            self.extra
        );
        std::fs::write(self.config_path(), cfg).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("keeper.log")).unwrap();
        let mut cmd = if self.one_cpu {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", env!("CARGO_BIN_EXE_keeper")]);
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_keeper"))
        };
        let child = cmd
            .args(["serve", "--config"])
            .arg(self.config_path())
            .args(["--shards", &self.shards.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("keeper binary starts");
        self.child = Some(child);
        self.wait_serving();
    }

    fn wait_serving(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("keeper exited during start-up ({status}); log:\n{}", self.log());
            }
            if four_letter(self.port, "srvr").contains("Mode:") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("keeper did not serve within {START_DEADLINE:?}; log:\n{}", self.log());
    }

    /// The server's combined stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keeper.log")).unwrap_or_default()
    }

    /// kill -9, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9, then start again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// The data directory (dataDir).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Starts `keeper serve --config <config>` with `env` added, its output in
/// `<config>.log`; stopped when the handle drops. (For configs the
/// [`Keeper`] harness does not write: no plaintext client port, say.)
pub fn spawn_serve(config: &Path, env: &[(&str, String)]) -> KillOnDrop {
    let log = std::fs::File::create(config.with_extension("log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keeper"));
    cmd.args(["serve", "--config"]).arg(config).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    KillOnDrop::new(cmd.spawn().expect("keeper starts"))
}

/// Runs `keeper serve --config <config>` expecting it to exit by itself:
/// its exit status and output, or `None` (after killing it) if it was
/// still running at the deadline.
pub fn serve_expecting_exit(config: &Path, deadline: Duration) -> (Option<std::process::ExitStatus>, String) {
    let out_path = config.with_extension("out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keeper"))
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("keeper binary starts");
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&out_path).unwrap_or_default())
}

/// Sends a four-letter word and returns the answer ("" if none).
pub fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Polls `cond` every 20 ms until it holds or `deadline` passes.
/// Sends `request` to 127.0.0.1:`port` over HTTP; the status line, the
/// headers and the body of the answer.
pub fn http(port: u16, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the HTTP port listens");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("an HTTP reply: {reply:?}"));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

pub fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// The system Python, which has Debian's python3-kazoo.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Whether a path exists (for optional external tools).
pub fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

/// Fails the test with the fix when a tool the tests use is not installed.
pub fn require(path: &str) {
    assert!(exists(path), "{path} is missing: run tools/install-test-deps.sh (the README's test command does)");
}

/// Where the records of a raft log segment start, and where the last one
/// ends, by walking the format: a 32-byte header, then records of 24 +
/// padded payload bytes (length, crc, index, term, payload).
pub fn log_records(segment: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut off = 32;
    while off + 4 <= segment.len() {
        let len = u32::from_le_bytes(segment[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        starts.push(off);
        off += 24 + len.div_ceil(8) * 8;
    }
    (starts, off)
}

/// The raft log's segment files in a `keeper-v1` directory, oldest first.
pub fn log_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("raftlog.")).collect();
    segs.sort();
    segs
}

/// A tmpfs the test mounted; unmounted when dropped.
pub struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Mounts a tmpfs of `size` (mount's syntax: "3m") at `at` (needs root, as CI has).
pub fn mount_tmpfs(at: &Path, size: &str) -> Mounted {
    std::fs::create_dir_all(at).unwrap();
    let status = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status().expect("mount runs");
    assert!(status.success(), "mounting a tmpfs at {} failed: this test needs root", at.display());
    Mounted(at.to_path_buf())
}

/// The seed of a randomized test: `KEEPER_TEST_SEED` when set (to replay a
/// run), else `default`, or the clock when `default` is None. Printed, with
/// the way to replay it.
pub fn test_seed(test: &str, default: Option<u64>) -> u64 {
    let seed = match std::env::var("KEEPER_TEST_SEED") {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("KEEPER_TEST_SEED must be a number, got {v:?}")),
        Err(_) => default.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1),
    };
    eprintln!("{test}: seed {seed} (replay: KEEPER_TEST_SEED={seed} cargo nextest run {test} --no-capture)");
    seed
}

/// A child process that is killed when dropped, so a failing test leaves none behind.
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is held until dropped")
    }

    /// Waits for the process to end and collects its output.
    pub fn wait_with_output(mut self) -> std::process::Output {
        self.0.take().expect("the child is held until dropped").wait_with_output().expect("the child's output is read")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
