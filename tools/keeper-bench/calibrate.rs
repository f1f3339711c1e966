//! `calibrate`: the floors of this machine that no server can beat: a
//! loopback TCP round trip with a trivial echo, and the disk's latency and
//! CPU time for one small write plus fdatasync.

use crate::stats::{Summary, histogram};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Round trips of one small message over loopback to an echo thread.
pub fn loopback_rtt(rounds: usize) -> std::io::Result<Summary> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 16];
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(()),
                n => s.write_all(&buf[..n])?,
            }
        }
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut h = histogram();
    let mut buf = [0u8; 16];
    let started = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        c.write_all(&[1u8; 16])?;
        c.read_exact(&mut buf)?;
        h.saturating_record(t.elapsed().as_micros().max(1) as u64);
    }
    let window = started.elapsed();
    drop(c);
    echo.join().expect("echo thread")?;
    Ok(Summary::of(&h, window, 0))
}

/// CPU time (user + system) this thread has used.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A 4 KiB write at a fixed offset then fdatasync, in a file under `dir`:
/// the latency of each, and the CPU time per round of the thread that
/// issues them (a durable batch costs a server at least that).
pub fn disk_sync(dir: &Path, rounds: usize) -> std::io::Result<(Summary, Duration)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(".keeper-bench-sync-{}", std::process::id()));
    let file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
    file.set_len(1 << 20)?;
    file.sync_all()?;
    let mut h = histogram();
    let block = [7u8; 4096];
    let cpu_before = thread_cpu();
    let started = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        file.write_all_at(&block, ((i % 256) * 4096) as u64)?;
        file.sync_data()?;
        h.saturating_record(t.elapsed().as_micros().max(1) as u64);
    }
    let window = started.elapsed().max(Duration::from_micros(1));
    let cpu_per_round = (thread_cpu() - cpu_before) / rounds.max(1) as u32;
    std::fs::remove_file(&path)?;
    Ok((Summary::of(&h, window, 0), cpu_per_round))
}
