//! Reading the server's CPU time and resident memory from /proc, so cost per
//! operation stays meaningful when client and server share the machine.

/// User plus system CPU seconds the process has used.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no side effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

/// The CPU seconds of several processes (an ensemble's servers), summed;
/// `None` if one of them cannot be read.
pub fn cpu_seconds_of(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

/// The resident sets of several processes, summed.
pub fn rss_bytes_of(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|p| rss_bytes(*p)).sum()
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        let spin = std::time::Instant::now();
        while spin.elapsed().as_millis() < 30 {}
        assert!(super::cpu_seconds(me).unwrap() > 0.0);
        assert!(super::rss_bytes(me).unwrap() > 1 << 20);
        assert!(super::cpu_seconds(u32::MAX).is_none());
    }
}
