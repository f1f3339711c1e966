//! The data-directory lock: one server per dataDir and per dataLogDir.
//!
//! Two servers on one directory would each append to their own view of the
//! log and snapshot over each other's files; after a restart one server's
//! acknowledged writes are gone. So a server takes an exclusive `flock` on
//! `<dir>/keeper-v1/LOCK` before it reads anything there (recovery repairs
//! torn tails, which must never happen under a live server), writes its pid
//! into the file, and holds the lock until the process ends. The kernel
//! drops a `flock` with the last descriptor of the process, so a server
//! killed with SIGKILL leaves nothing to clean up.
//!
//! Tools that are safe beside a running server (`keeper purge`, the dumps)
//! do not take the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file's name inside keeper's subdirectory.
pub const LOCK_FILE: &str = "LOCK";

/// How long to wait for a lock whose holder is already gone: a process
/// that just died may hold its descriptors for a moment while the kernel
/// tears it down.
const DEAD_HOLDER_WAIT: Duration = Duration::from_secs(5);

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    /// Kept open: the lock lives as long as this descriptor.
    _file: File,
    pub path: PathBuf,
}

/// Locks `dir` (keeper's subdirectory of a dataDir or dataLogDir, created
/// if missing) for this process. Fails at once, naming the holder's pid,
/// while another live process holds it.
pub fn lock(dir: &Path) -> Result<DirLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let deadline = Instant::now() + DEAD_HOLDER_WAIT;
    loop {
        if try_flock(&file).map_err(|e| format!("cannot lock {}: {e}", path.display()))? {
            break;
        }
        let holder = holder_pid(&mut file);
        let alive = holder.is_some_and(process_exists);
        if alive || Instant::now() >= deadline {
            let who = holder.map_or("another process".to_string(), |pid| format!("process {pid}"));
            return Err(format!(
                "{} is in use by {who} (it holds {}); two servers on one data directory would lose acknowledged writes. \
                 Stop that server, or give this one its own dataDir and dataLogDir",
                dir.display(),
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0).and_then(|_| file.rewind()).and_then(|_| file.write_all(pid.as_bytes())).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(DirLock { _file: file, path })
}

/// Takes the lock without waiting; false if another descriptor holds it.
fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: plain syscall on an open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(err) }
}

/// The pid the current holder wrote, if it wrote one.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether a process with this pid exists (signal 0 probes without sending).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks for existence and permission.
    unsafe { libc::kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("keeper-lock-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let held = lock(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&held.path).unwrap().trim(), std::process::id().to_string());
        // flock is per open file description: a second open in this process conflicts too.
        let err = lock(&dir).unwrap_err();
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        drop(held);
        let again = lock(&dir).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
