//! Packet identifier allocation.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Hands out packet identifiers in 1..=65535, in increasing order, wrapping
/// after 65535 and skipping identifiers still in use.
#[derive(Debug, Default)]
pub(crate) struct PacketIds {
    last: u16,
    in_use: HashSet<u16, BuildHasherDefault<IdHasher>>,
}

/// Hashes a packet identifier with one multiplication (Fibonacci hashing):
/// every delivery allocates one and every acknowledgement frees it, and
/// SipHash, the standard map's, cost more than the set's own work. The
/// identifiers put in the set are chosen here, not by the peer, so nobody
/// can pick keys that collide.
#[derive(Debug, Default)]
struct IdHasher(u64);

/// 2^64 / φ, odd: multiplying by it spreads consecutive identifiers over the
/// high bits, which the table's control bytes use, and keeps them apart in
/// the low bits, which pick its bucket.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u16` is used (a `u16` hashes through it); any other
        // input still hashes every byte.
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u16(&mut self, id: u16) {
        self.0 = u64::from(id).wrapping_mul(FIBONACCI);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl PacketIds {
    /// The next free identifier after the last one handed out, or `None` when
    /// all 65,535 identifiers are in use.
    pub(crate) fn allocate(&mut self) -> Option<u16> {
        if self.in_use.len() >= usize::from(u16::MAX) {
            return None;
        }
        let mut id = self.last;
        loop {
            id = id.checked_add(1).unwrap_or(1);
            if self.in_use.insert(id) {
                self.last = id;
                return Some(id);
            }
        }
    }

    /// Marks `id` as in use (a publish restored from storage keeps its
    /// identifier). Returns false for 0 or an identifier already in use.
    pub(crate) fn reserve(&mut self, id: u16) -> bool {
        id != 0 && self.in_use.insert(id)
    }

    /// Frees `id`; returns whether it was in use.
    pub(crate) fn release(&mut self, id: u16) -> bool {
        self.in_use.remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::PacketIds;

    #[test]
    fn ids_start_at_one_and_increase() {
        let mut ids = PacketIds::default();
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.allocate(), Some(2));
        ids.release(1);
        assert_eq!(ids.allocate(), Some(3));
    }

    #[test]
    fn ids_wrap_after_65535_and_skip_ids_in_use() {
        let mut ids = PacketIds::default();
        assert!(ids.reserve(1));
        assert!(ids.reserve(3));
        ids.last = 65534;
        assert_eq!(ids.allocate(), Some(65535));
        assert_eq!(ids.allocate(), Some(2));
        assert_eq!(ids.allocate(), Some(4));
    }

    #[test]
    fn exhaustion_is_reported_and_a_release_makes_room() {
        let mut ids = PacketIds::default();
        for expected in 1..=u16::MAX {
            assert_eq!(ids.allocate(), Some(expected));
        }
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(40_000));
        assert_eq!(ids.allocate(), Some(40_000));
    }

    #[test]
    fn zero_and_duplicates_cannot_be_reserved() {
        let mut ids = PacketIds::default();
        assert!(!ids.reserve(0));
        assert!(ids.reserve(7));
        assert!(!ids.reserve(7));
        assert!(ids.release(7));
        assert!(!ids.release(7));
    }
}
