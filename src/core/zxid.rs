//! The transaction id.
//!
//! A zxid is ZooKeeper's 64-bit transaction id, on the wire and on disk as
//! one signed long:
//!
//! ```text
//! zxid = epoch (high 32 bits) | counter (low 32 bits)
//! ```
//!
//! - The **epoch** names the leadership that ordered the transaction. A new
//!   leader starts a new epoch, so zxids of different leaders never collide
//!   and a later leader's zxids are always larger. A standalone server stays
//!   in epoch 0.
//! - The **counter** numbers the transactions of one epoch from 1.
//!
//! Zxids are stamped once, by the server that prepares the transaction,
//! and are identical on every replica; they only grow. Zxid 0 is "before
//! the first transaction".

use rkyv::{Archive, Deserialize, Serialize};

/// A transaction id: epoch in the high 32 bits, counter in the low 32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Archive, Serialize, Deserialize)]
#[rkyv(derive(Debug))]
pub struct Zxid(i64);

impl Zxid {
    /// Before the first transaction.
    pub const ZERO: Zxid = Zxid(0);

    /// The zxid of transaction `counter` of `epoch`.
    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }

    /// A zxid as the wire and the files carry it.
    pub const fn from_raw(raw: i64) -> Zxid {
        Zxid(raw)
    }

    /// The zxid as the wire and the files carry it.
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// The leadership epoch.
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The transaction's number within its epoch.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }

    /// The next zxid. A full counter carries into the epoch, as a
    /// standalone ZooKeeper's does (its zxid is one incremented long); a
    /// leader of an ensemble starts a new epoch before that happens.
    pub fn next(self) -> Zxid {
        let next = Zxid(self.0.checked_add(1).expect("zxids never reach i64::MAX"));
        debug_assert!(next > self, "zxids only grow");
        next
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl std::fmt::LowerHex for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_counter_are_the_two_halves() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.raw(), 0x3_0000_0007);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
        assert!(Zxid::new(4, 1) > Zxid::new(3, u32::MAX), "a later epoch is larger whatever the counter");
        assert_eq!(Zxid::new(0, u32::MAX).next(), Zxid::new(1, 0), "a full counter carries into the epoch");
        assert_eq!(Zxid::ZERO.next(), Zxid::new(0, 1));
        assert_eq!(format!("{z}"), "0x300000007");
    }
}
