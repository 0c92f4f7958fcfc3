//! A connection's read buffer: small while its client is quiet (most of a fleet,
//! most of the time), larger while it sends a lot.
//!
//! The buffer is allocated for as long as the connection waits for bytes, so an
//! idle connection's size is [`MIN_CAPACITY`], not one TLS record. A read that
//! fills the buffer doubles it for the next read (up to [`MAX_CAPACITY`]); a small
//! read brings it back to [`MIN_CAPACITY`].

use bytes::BytesMut;

/// Initial and idle capacity: holds the small packets of a quiet device
/// (PINGREQ, PUBACK, a short PUBLISH) in one read.
const MIN_CAPACITY: usize = 512;
/// Largest capacity: the plaintext of one full TLS record.
const MAX_CAPACITY: usize = 16 * 1024;

/// The bytes of one read, sized for the traffic of its connection.
#[derive(Debug)]
pub(super) struct ReadBuffer {
    bytes: BytesMut,
}

impl ReadBuffer {
    /// An empty buffer of the minimum capacity.
    pub(super) fn new() -> ReadBuffer {
        ReadBuffer {
            bytes: BytesMut::with_capacity(MIN_CAPACITY),
        }
    }

    /// The buffer to read into.
    pub(super) fn bytes_mut(&mut self) -> &mut BytesMut {
        &mut self.bytes
    }

    /// The bytes read and not yet consumed.
    pub(super) fn filled(&self) -> &[u8] {
        &self.bytes
    }

    /// Empties the buffer once its bytes were handled, and sizes it for the next
    /// read: doubled if this read filled it, back to the minimum if it was small.
    pub(super) fn consumed(&mut self) {
        let (read, capacity) = (self.bytes.len(), self.bytes.capacity());
        let next = if read >= capacity {
            (capacity * 2).min(MAX_CAPACITY)
        } else if read <= MIN_CAPACITY {
            MIN_CAPACITY
        } else {
            capacity
        };
        if next == capacity {
            self.bytes.clear();
        } else {
            self.bytes = BytesMut::with_capacity(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(buffer: &mut ReadBuffer, len: usize) {
        buffer.bytes_mut().extend_from_slice(&vec![7; len]);
        assert_eq!(buffer.filled().len(), len);
        buffer.consumed();
        assert!(buffer.filled().is_empty());
    }

    #[test]
    fn starts_small() {
        let mut buffer = ReadBuffer::new();
        assert!(buffer.bytes_mut().capacity() >= MIN_CAPACITY);
        assert!(buffer.bytes_mut().capacity() < 2 * MIN_CAPACITY);
    }

    #[test]
    fn grows_while_reads_fill_it_up_to_one_record() {
        let mut buffer = ReadBuffer::new();
        let mut capacities = Vec::new();
        for _ in 0..8 {
            let full = buffer.bytes_mut().capacity();
            read(&mut buffer, full);
            capacities.push(buffer.bytes_mut().capacity());
        }
        assert!(
            capacities.windows(2).all(|w| w[0] <= w[1]),
            "{capacities:?}"
        );
        assert!(capacities[0] >= 2 * MIN_CAPACITY);
        assert_eq!(capacities.last(), Some(&MAX_CAPACITY));
    }

    #[test]
    fn keeps_its_size_for_medium_reads_and_shrinks_after_a_small_one() {
        let mut buffer = ReadBuffer::new();
        while buffer.bytes_mut().capacity() < MAX_CAPACITY {
            let full = buffer.bytes_mut().capacity();
            read(&mut buffer, full);
        }
        read(&mut buffer, MAX_CAPACITY / 2);
        assert_eq!(buffer.bytes_mut().capacity(), MAX_CAPACITY);
        read(&mut buffer, 2);
        assert!(buffer.bytes_mut().capacity() < 2 * MIN_CAPACITY);
    }
}
