//! File names of the form `<prefix><zxid as 16 hex digits>`, used by log
//! segments and snapshots: listing a directory's files of one kind, oldest first.

use crate::core::zxid::Zxid;
use std::io;
use std::path::{Path, PathBuf};

/// The `(path, zxid)` of every file in `dir` named `<prefix><hex>`, sorted
/// by zxid. A missing directory holds no file. Other names (temporary files
/// included) are skipped.
pub fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(PathBuf, Zxid)>> {
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
        if let Ok(zxid) = i64::from_str_radix(hex, 16) {
            out.push((entry.path(), Zxid::from_raw(zxid)));
        }
    }
    out.sort_by_key(|(_, zxid)| *zxid);
    Ok(out)
}

/// The name of the file for `zxid`.
pub fn name(prefix: &str, zxid: Zxid) -> String {
    format!("{prefix}{:016x}", zxid.raw())
}
