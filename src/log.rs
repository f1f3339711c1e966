//! Logging: `tracing` events, one line each on stderr (time, level, module,
//! message, fields such as the peer, session or server). The level comes
//! from `KEEPER_LOG` (a filter such as `debug` or
//! `info,keeper::runtime::peer=debug`), else `keeper.logLevel` in zoo.cfg,
//! else `info`. Nothing is logged per request at `info`; warnings a client
//! can cause over and over (malformed frames, failed handshakes) go through
//! [`warn_limited!`](crate::warn_limited), at most one a second per place
//! in the code, with the count of those left out.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The filter `KEEPER_LOG`, `configured`, or `info` asks for.
pub fn filter(configured: Option<&str>) -> String {
    std::env::var("KEEPER_LOG").ok().filter(|f| !f.trim().is_empty()).or(configured.map(str::to_string)).unwrap_or_else(|| "info".to_string())
}

/// Starts logging with `filter` (see [`filter`]); an unreadable filter is an error.
pub fn init(filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| format!("the log filter {filter:?} (KEEPER_LOG or keeper.logLevel): {e}"))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init().map_err(|e| format!("logging cannot start: {e}"))
}

/// How often a rate-limited warning may be logged from one place.
const LIMITED_EVERY_MS: u64 = 1000;

/// One place in the code that logs a rate-limited warning.
pub struct Site {
    /// When it last logged (ms since the first rate-limited event), +1 (0: never).
    last_ms: AtomicU64,
    /// Events left out since.
    suppressed: AtomicU64,
}

impl Site {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Site {
        Site { last_ms: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    /// Whether to log now: the count of events left out since the last, if so.
    pub fn allow(&self) -> Option<u64> {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        self.allow_at(EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1)
    }

    /// [`Site::allow`] at `now_ms` (from a fixed epoch, above 0).
    fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < LIMITED_EVERY_MS {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.last_ms.store(now_ms, Ordering::Relaxed);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

/// `tracing::warn!`, at most once a second from this place; the event
/// carries `suppressed`, the count left out since the last.
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static SITE: $crate::log::Site = $crate::log::Site::new();
        if let Some(suppressed) = SITE.allow() {
            tracing::warn!(suppressed, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_logs_once_a_second_and_counts_the_rest() {
        let site = Site::new();
        assert_eq!(site.allow_at(10), Some(0));
        assert_eq!(site.allow_at(500), None);
        assert_eq!(site.allow_at(1009), None);
        assert_eq!(site.allow_at(1010), Some(2), "a second later, with the two left out");
        assert_eq!(site.allow_at(1011), None);
        assert!(init("info,keeper=nonsense=x").is_err(), "a filter that does not parse is refused");
    }
}
