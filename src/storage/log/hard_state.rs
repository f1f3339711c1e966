//! The hard state's file, `<dataLogDir>/keeper-v1/hardstate`.
//!
//! ```text
//! hardstate = magic "KPRHARD1" (8 bytes)
//!             term u64 LE | vote u64 LE | commit u64 LE
//!             crc32c u32 LE      ; over the three numbers
//!             reserved 4 zero bytes
//! ```
//! It is replaced whole: written to `hardstate.tmp`, synced, renamed over
//! the old one, and the directory synced, so a crash leaves the old state
//! or the new one, never a mix. No file means the default state.

use super::{HardState, LogError};
use crate::storage::segment::{io_err, sync_dir};
use std::io::Write;
use std::path::Path;

/// The file's name in keeper's subdirectory of the dataLogDir.
pub const FILE: &str = "hardstate";
const MAGIC: &[u8; 8] = b"KPRHARD1";
const LEN: usize = 40;

/// Reads the hard state in `dir`; the default when there is none.
pub fn read(dir: &Path) -> Result<HardState, LogError> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
        Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
    };
    let corrupt = |why: &str| LogError::Corrupt { file: path.clone(), offset: 0, why: why.to_string() };
    if bytes.len() != LEN || &bytes[..8] != MAGIC || bytes[36..].iter().any(|b| *b != 0) {
        return Err(corrupt("not a hard state file"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes"));
    if crc != crc32c::crc32c(&bytes[8..32]) {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(HardState { term: u64_at(8), vote: u64_at(16), commit: u64_at(24) })
}

/// Replaces the hard state in `dir`, durably.
pub fn write(dir: &Path, state: HardState) -> Result<(), LogError> {
    let mut bytes = [0u8; LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..16].copy_from_slice(&state.term.to_le_bytes());
    bytes[16..24].copy_from_slice(&state.vote.to_le_bytes());
    bytes[24..32].copy_from_slice(&state.commit.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[8..32]);
    bytes[32..36].copy_from_slice(&crc.to_le_bytes());
    let tmp = dir.join(format!("{FILE}.tmp"));
    let path = dir.join(FILE);
    let mut file = std::fs::File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    file.write_all(&bytes).and_then(|_| file.sync_all()).map_err(io_err(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io_err(format!("renaming {} into place", tmp.display())))?;
    sync_dir(dir).map_err(io_err(format!("syncing directory {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("keeper-hardstate-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir).unwrap(), HardState::default());
        let state = HardState { term: 7, vote: 3, commit: 1 << 40 };
        write(&dir, state).unwrap();
        assert_eq!(read(&dir).unwrap(), state);
        let mut bytes = std::fs::read(dir.join(FILE)).unwrap();
        bytes[20] ^= 1;
        std::fs::write(dir.join(FILE), &bytes).unwrap();
        assert!(read(&dir).unwrap_err().to_string().contains("checksum mismatch"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
