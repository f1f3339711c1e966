//! Stopping on SIGTERM or SIGINT. Both signals are blocked in every thread
//! (the mask is set before any other thread starts, and threads inherit
//! it) and one thread waits for them: the first asks the server to stop
//! gracefully (the broadcast core sees [`asked`] at its next tick), a
//! second one ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static ASKED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for.
pub fn asked() -> bool {
    ASKED.load(Ordering::Relaxed)
}

/// Blocks SIGTERM and SIGINT in this thread and every thread it starts
/// later, and starts the thread that waits for them. Call before starting
/// any other thread.
pub fn watch_signals() -> Result<(), String> {
    // SAFETY: plain libc calls on a sigset_t this function owns.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(format!("cannot block SIGTERM and SIGINT: error {rc}"));
        }
        set
    };
    std::thread::Builder::new()
        .name("keeper-signals".into())
        .spawn(move || {
            loop {
                let mut signal = 0;
                // SAFETY: sigwait on the set blocked above.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    continue;
                }
                let name = if signal == libc::SIGTERM { "SIGTERM" } else { "SIGINT" };
                if ASKED.swap(true, Ordering::Relaxed) {
                    tracing::info!("{name} again: stopping now");
                    std::process::exit(1);
                }
                tracing::info!("{name}: stopping (handing over leadership, answering what is in flight); send it again to stop at once");
                super::sd_notify::notify("STOPPING=1");
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}
