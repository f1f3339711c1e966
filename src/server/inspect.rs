//! `keeper log dump` and `keeper snapshot dump`: readable listings of the
//! on-disk files (like ZooKeeper's LogFormatter and SnapshotFormatter), with
//! corruption reported by file and offset.

use crate::core::txn::{Txn, TxnBody, TxnOp};
use crate::core::zxid::Zxid;
use crate::proto::records::Acl;
use crate::storage::log::entry_of_record;
use crate::storage::record::Format;
use crate::storage::segment::{self, Scanned};
use crate::storage::snapshot::{self, SnapshotFile};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// Data shown as text when printable, else as a byte count.
fn data_text(data: &Option<bytes::Bytes>) -> String {
    match data {
        None => "null".into(),
        Some(d) if d.len() <= 64 && d.iter().all(|b| b.is_ascii_graphic() || *b == b' ') => {
            format!("{:?}", String::from_utf8_lossy(d))
        }
        Some(d) => format!("<{} bytes>", d.len()),
    }
}

fn acl_text(acl: &[Acl]) -> String {
    acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect::<Vec<_>>().join(",")
}

fn op_text(op: &TxnOp) -> String {
    match op {
        TxnOp::Create { path, data, acl, kind } => format!("create {path} data={} acl=[{}] kind={kind:?}", data_text(data), acl_text(acl)),
        TxnOp::Delete { path } => format!("delete {path}"),
        TxnOp::SetData { path, data, version } => format!("setData {path} data={} version={version}", data_text(data)),
        TxnOp::SetAcl { path, acl, version } => {
            format!("setACL {path} acl=[{}] aversion={version}", acl_text(acl))
        }
        TxnOp::Check { path } => format!("check {path}"),
        TxnOp::Error { code } => format!("error {code}"),
    }
}

/// One transaction as a line.
pub fn txn_line(txn: &Txn) -> String {
    let body = match &txn.body {
        TxnBody::CreateSession { timeout_ms } => format!("createSession timeout={timeout_ms}"),
        TxnBody::CloseSession => "closeSession".into(),
        TxnBody::Single(op) => op_text(op),
        TxnBody::Multi(ops) => format!("multi [{}]", ops.iter().map(op_text).collect::<Vec<_>>().join("; ")),
    };
    format!("zxid 0x{:x} time {} session 0x{:x} cxid 0x{:x} {body}", txn.zxid, txn.time_ms, txn.session_id, txn.cxid)
}

/// One record as a line: a transaction (V1), or a raft entry with its
/// transaction or no-op (V2).
fn record_line(format: Format, key: u64, term: u64, payload: &[u8]) -> String {
    let txn_text = |bytes: &[u8]| Txn::from_bytes(bytes).map_or_else(|e| format!("UNDECODABLE transaction: {e}"), |t| txn_line(&t));
    match format {
        Format::V1 => txn_text(payload),
        Format::V2 => match entry_of_record(key, term, payload) {
            Ok(e) if e.data.is_empty() => format!("index {key} term {term} no-op"),
            Ok(e) => format!("index {key} term {term} {}", txn_text(&e.data)),
            Err(why) => format!("index {key} term {term} UNDECODABLE entry: {why}"),
        },
    }
}

/// Prints every record of a segment file, or of every segment in a
/// directory (the legacy log's, then the raft log's).
/// Returns false if corruption was found.
pub fn dump_log(path: &Path, out: &mut impl Write) -> Result<bool, String> {
    let files = if path.is_dir() {
        let mut files = Vec::new();
        for format in [Format::V1, Format::V2] {
            files.extend(segment::list(path, format).map_err(|e| e.to_string())?.into_iter().map(|s| s.path));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut clean = true;
    for file in files {
        let mut text = String::new();
        let header = segment::scan(&file, |s| match s {
            Scanned::Record { format, key, term, payload, .. } => {
                let _ = writeln!(text, "{}", record_line(format, key, term, payload));
            }
            Scanned::End { offset } => {
                let _ = writeln!(text, "-- end of records at offset {offset}");
            }
            Scanned::Invalid { offset, why, torn } => {
                clean = false;
                let kind = if torn {
                    "torn tail (nothing valid follows; recovery truncates it)"
                } else {
                    "CORRUPTION (valid data follows; recovery refuses to start)"
                };
                let _ = writeln!(text, "-- invalid record at offset {offset}: {why}: {kind}");
            }
        })
        .map_err(|e| e.to_string())?;
        let first = match header.format {
            Format::V1 => format!("legacy log, first zxid {:#x}", header.first),
            Format::V2 => format!("raft log, first index {}", header.first),
        };
        writeln!(out, "== {} ({first})\n{text}", file.display()).map_err(|e| e.to_string())?;
    }
    Ok(clean)
}

/// Prints a snapshot file.
pub fn dump_snapshot(path: &Path, out: &mut impl Write) -> Result<(), String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let zxid = name
        .strip_prefix("snapshot.")
        .and_then(|h| i64::from_str_radix(h, 16).ok().map(Zxid::from_raw))
        .ok_or(format!("{}: not a snapshot file name (snapshot.<hex zxid>)", path.display()))?;
    let mut p = snapshot::Collected::default();
    let info = snapshot::read(&SnapshotFile { path: path.to_path_buf(), zxid }, &mut p).map_err(|e| e.to_string())?;
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| e.to_string());
    w(
        out,
        format!(
            "snapshot {} zxid {} raft index {} term {}: {} nodes, {} sessions",
            path.display(),
            info.zxid,
            info.position.index,
            info.position.term,
            info.nodes,
            p.sessions.len()
        ),
    )?;
    for (id, timeout) in &p.sessions {
        w(out, format!("session 0x{id:x} timeout {timeout}"))?;
    }
    p.nodes.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, n) in &p.nodes {
        let acl = p.acl_lists.get(n.acl).map(|l| acl_text(l)).unwrap_or_default();
        let s = &n.persisted;
        w(
            out,
            format!(
                "{path}\n  czxid 0x{:x} mzxid 0x{:x} pzxid 0x{:x} ctime {} mtime {} version {} child_creates {} aversion {} kind {:?}\n  acl [{acl}] data {}",
                s.czxid,
                s.mzxid,
                s.pzxid,
                s.ctime,
                s.mtime,
                s.version,
                s.child_creates,
                s.aversion,
                n.kind,
                data_text(&n.data)
            ),
        )?;
    }
    Ok(())
}
