//! Snapshot transfer between the servers of an ensemble, for a follower
//! that needs entries its leader no longer keeps (it was down long, or its
//! data directory was wiped).
//!
//! The leader writes its committed tree as an ordinary snapshot file (on a
//! thread that may block), then sends the file in [`SNAPSHOT_CHUNK_BYTES`]
//! pieces, each in a checksummed peer frame, never holding the whole file
//! in memory and never queueing more than [`SNAPSHOT_QUEUED_BYTES_MAX`] on
//! the link; then raft's message that installs it. The follower writes the
//! pieces, in order, to `snapshot.<zxid>.tmp`, and once the last one is in,
//! syncs it and renames it into place: it is then one of its own snapshots
//! (recovery would start from it). A piece out of order drops the transfer;
//! raft sends the snapshot again, and raft's message for a snapshot that did
//! not arrive whole is dropped. (The pieces are written with plain writes on
//! the reactor: into the page cache, and a transfer is rare.)

use crate::core::consensus::LogPosition;
use crate::core::messages::PeerMessage;
use crate::core::tree::DataTree;
use crate::runtime::peer::Peers;
use crate::storage::segment::sync_dir;
use crate::storage::snapshot;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// Bytes of snapshot file per peer frame.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Bytes of a transfer queued on a link before the sender waits for it to drain.
pub const SNAPSHOT_QUEUED_BYTES_MAX: usize = 8 << 20;

/// Writes `tree` (at `position`) as a snapshot file in `snap_dir` and sends
/// it to server `to` in chunks, then `message`; true if all of it was queued.
pub async fn send(tree: DataTree, position: LogPosition, to: u64, message: PeerMessage, snap_dir: PathBuf, peers: Rc<Peers>) -> bool {
    let zxid = tree.last_zxid().raw();
    let written = glommio::executor().spawn_blocking(move || snapshot::write(&tree, position, &snap_dir)).await;
    let file = match written {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("writing a snapshot for server {to} failed: {e}");
            return false;
        }
    };
    let path = file.path.clone();
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) => {
            tracing::warn!("reading the size of {}: {e}", path.display());
            return false;
        }
    };
    let mut offset = 0u64;
    loop {
        while peers.queued_bytes(to) > SNAPSHOT_QUEUED_BYTES_MAX {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let (path, at) = (path.clone(), offset);
        let chunk = glommio::executor().spawn_blocking(move || read_chunk(&path, at)).await;
        let data = match chunk {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("reading {} for server {to}: {e}", file.path.display());
                return false;
            }
        };
        let last = offset + data.len() as u64 >= len;
        let size = data.len() as u64;
        peers.send(to, &PeerMessage::SnapshotChunk { zxid, index: position.index, term: position.term, offset, data, last });
        offset += size;
        if last {
            break;
        }
    }
    peers.send(to, &message);
    tracing::info!("sent server {to} the snapshot at index {} ({len} bytes)", position.index);
    true
}

/// Up to a chunk of the file at `at`.
fn read_chunk(path: &Path, at: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut buf = vec![0u8; SNAPSHOT_CHUNK_BYTES];
    let n = file.read_at(&mut buf, at)?;
    buf.truncate(n);
    Ok(buf)
}

/// The snapshot file being received, and the last one received whole.
#[derive(Default)]
pub struct Receiver {
    incoming: Option<Incoming>,
    received: Option<(LogPosition, PathBuf, i64)>,
}

struct Incoming {
    position: LogPosition,
    zxid: i64,
    tmp: PathBuf,
    file: File,
    next: u64,
}

impl Receiver {
    /// Writes one piece; a piece out of order drops the transfer.
    pub fn chunk(&mut self, snap_dir: &Path, zxid: i64, position: LogPosition, offset: u64, data: &[u8], last: bool) {
        if offset == 0 {
            let tmp = snap_dir.join(format!("snapshot.{zxid:016x}.tmp"));
            match File::create(&tmp) {
                Ok(file) => self.incoming = Some(Incoming { position, zxid, tmp, file, next: 0 }),
                Err(e) => return tracing::warn!("cannot create {}: {e}", tmp.display()),
            }
        }
        let Some(inc) = self.incoming.as_mut().filter(|i| i.next == offset && i.zxid == zxid && i.position == position) else {
            if self.incoming.take().is_some() {
                tracing::warn!("a snapshot piece came out of order (offset {offset}); dropping the transfer");
            }
            return;
        };
        if let Err(e) = inc.file.write_all(data) {
            tracing::warn!("writing {}: {e}; dropping the transfer", inc.tmp.display());
            self.incoming = None;
            return;
        }
        inc.next += data.len() as u64;
        if last {
            let inc = self.incoming.take().expect("present above");
            match finish(inc.file, &inc.tmp, snap_dir, zxid) {
                Ok(path) => self.received = Some((inc.position, path, zxid)),
                Err(e) => tracing::warn!("keeping the received snapshot failed: {e}"),
            }
        }
    }

    /// The file received whole for `position`, and its zxid, if it was.
    pub fn file_for(&self, position: LogPosition) -> Option<(PathBuf, i64)> {
        self.received.as_ref().filter(|(p, _, _)| *p == position).map(|(_, path, zxid)| (path.clone(), *zxid))
    }
}

/// Syncs a received snapshot file and renames it into place.
fn finish(file: File, tmp: &Path, snap_dir: &Path, zxid: i64) -> std::io::Result<PathBuf> {
    file.sync_all()?;
    drop(file);
    let path = snap_dir.join(format!("snapshot.{zxid:016x}"));
    std::fs::rename(tmp, &path)?;
    sync_dir(snap_dir)?;
    Ok(path)
}

/// Loads a received snapshot (blocks: run it where blocking is allowed).
pub fn load(path: &Path, zxid: i64) -> Result<DataTree, String> {
    let file = snapshot::SnapshotFile { path: path.to_path_buf(), zxid: crate::core::zxid::Zxid::from_raw(zxid) };
    snapshot::load(&file).map(|(tree, _)| tree).map_err(|e| e.to_string())
}
