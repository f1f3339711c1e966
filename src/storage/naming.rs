//! File names of the form `<prefix><key as 16 hex digits>`, used by log
//! segments (key: zxid or raft index) and snapshots (key: zxid): listing a
//! directory's files of one kind, oldest first.

use std::io;
use std::path::{Path, PathBuf};

/// The `(path, key)` of every file in `dir` named `<prefix><hex>`, sorted
/// by key. A missing directory holds no file. Other names (temporary files
/// included) are skipped.
pub fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(PathBuf, u64)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else { continue };
        if let Ok(key) = u64::from_str_radix(hex, 16) {
            out.push((entry.path(), key));
        }
    }
    out.sort_by_key(|(_, key)| *key);
    Ok(out)
}

/// The name of the file for `key`.
pub fn name(prefix: &str, key: u64) -> String {
    format!("{prefix}{key:016x}")
}
