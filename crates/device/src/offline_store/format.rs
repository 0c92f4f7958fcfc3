//! The offline store's file: an append-only log of checksummed records.
//!
//! ```text
//! file    = header record*
//! header  = "IOTCOQ" 0x00 0x01                 (8 bytes: magic, format version 1)
//! record  = length:u32le crc32:u32le body       (length = body bytes, crc32 of body)
//! body    = 0x01 seq:u64le mqtt-publish         a QoS 1 publish accepted by `publish`
//!         | 0x02 seq:u64le                      the publish `seq` is done (acknowledged
//!                                               or refused): it is not pending any more
//! ```
//!
//! `mqtt-publish` is the message as an MQTT 5 PUBLISH packet, encoded and
//! decoded by `iotcore-mqtt`'s codec (topic, payload, retain flag and
//! properties; its packet identifier is a placeholder: the session assigns a
//! new one when the message is sent). Sequence numbers grow with each
//! publish; the pending publishes are sent in that order.
//!
//! A crash can leave a record half-written at the end, and a disk can flip a
//! byte: [`parse`] reads whole, intact records up to the first one that is
//! incomplete, fails its checksum or cannot be decoded, and reports where it
//! stopped ([`Damage`]). It never panics, whatever the bytes.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::BytesMut;
use iotcore_mqtt::packet::{self, Packet, Publish};
use iotcore_mqtt::{EncodeError, ProtocolVersion, QoS};

/// The first bytes of every store file: magic and format version.
pub const MAGIC: &[u8; 8] = b"IOTCOQ\x00\x01";
/// Length and checksum before each record's body.
const RECORD_HEADER: usize = 8;
/// Kind byte and sequence number at the start of each body.
const BODY_HEADER: usize = 9;
/// The body's kind byte of a publish record.
const KIND_PUBLISH: u8 = 1;
/// The body's kind byte of an acknowledgement record.
const KIND_ACK: u8 = 2;
/// The packet identifier written in stored PUBLISH packets (MQTT requires
/// one at QoS 1); never sent.
const PLACEHOLDER_PACKET_ID: u16 = 1;

/// Why [`parse`] stopped before the end of the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The record starting at `offset` is incomplete: a write cut short.
    Torn {
        /// Where the record starts.
        offset: usize,
    },
    /// The record starting at `offset` does not match its checksum.
    Checksum {
        /// Where the record starts.
        offset: usize,
    },
    /// The record starting at `offset` has a valid checksum but makes no sense.
    Invalid {
        /// Where the record starts.
        offset: usize,
        /// What is wrong with it.
        detail: String,
    },
}

impl Damage {
    /// Where the damaged record starts: everything before it was read.
    pub fn offset(&self) -> usize {
        match self {
            Damage::Torn { offset }
            | Damage::Checksum { offset }
            | Damage::Invalid { offset, .. } => *offset,
        }
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Torn { offset } => write!(f, "the record at byte {offset} is incomplete"),
            Damage::Checksum { offset } => {
                write!(f, "the record at byte {offset} does not match its checksum")
            }
            Damage::Invalid { offset, detail } => {
                write!(f, "the record at byte {offset} is invalid: {detail}")
            }
        }
    }
}

/// The bytes do not start like a store file: another file is in the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an offline store file (it does not start with the store's magic bytes)")]
pub struct NotAStore;

/// A publish accepted and not yet done.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingPublish {
    /// Its sequence number: pending publishes are sent in this order.
    pub seq: u64,
    /// The message, without a packet identifier.
    pub publish: Publish,
    /// Where its record lies in the bytes parsed.
    pub record: Range<usize>,
}

/// What a store file holds, as far as it is intact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreContents {
    /// The publishes not yet done, oldest first.
    pub pending: Vec<PendingPublish>,
    /// How many bytes were read: the header and every whole, intact record.
    pub valid_len: usize,
    /// Why reading stopped before the end, if it did.
    pub damage: Option<Damage>,
    /// The sequence number the next publish gets.
    pub next_seq: u64,
}

/// Reads a store file's bytes: the pending publishes in order, up to the
/// first damaged record.
///
/// Empty bytes, or a header cut short, are an empty store (a file whose
/// creation was interrupted). Fails only when the bytes are not a store
/// file at all. Never panics.
pub fn parse(bytes: &[u8]) -> Result<StoreContents, NotAStore> {
    let header = bytes.len().min(MAGIC.len());
    if bytes[..header] != MAGIC[..header] {
        return Err(NotAStore);
    }
    let mut contents = StoreContents::default();
    if bytes.len() < MAGIC.len() {
        if !bytes.is_empty() {
            contents.damage = Some(Damage::Torn { offset: 0 });
        }
        return Ok(contents);
    }
    let mut pending: BTreeMap<u64, PendingPublish> = BTreeMap::new();
    let mut offset = MAGIC.len();
    while offset < bytes.len() {
        match read_record(bytes, offset) {
            Ok((record, end)) => {
                if let Err(detail) = apply(record, offset..end, &mut pending, &mut contents) {
                    contents.damage = Some(Damage::Invalid { offset, detail });
                    break;
                }
                offset = end;
            }
            Err(damage) => {
                contents.damage = Some(damage);
                break;
            }
        }
    }
    contents.valid_len = offset;
    contents.pending = pending.into_values().collect();
    Ok(contents)
}

/// A record's meaning.
enum Record {
    Publish { seq: u64, publish: Box<Publish> },
    Ack { seq: u64 },
}

/// Reads the record at `offset`; returns it and where the next one starts.
fn read_record(bytes: &[u8], offset: usize) -> Result<(Record, usize), Damage> {
    let rest = &bytes[offset..];
    let torn = Damage::Torn { offset };
    let header: &[u8; RECORD_HEADER] = rest
        .get(..RECORD_HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or(torn.clone())?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let body = rest
        .get(RECORD_HEADER..)
        .and_then(|r| r.get(..len))
        .ok_or(torn)?;
    if crc32fast::hash(body) != crc {
        return Err(Damage::Checksum { offset });
    }
    let invalid = |detail: String| Damage::Invalid { offset, detail };
    let record = decode_body(body).map_err(invalid)?;
    Ok((record, offset + RECORD_HEADER + len))
}

fn decode_body(body: &[u8]) -> Result<Record, String> {
    let Some((&kind, rest)) = body.split_first() else {
        return Err("empty body".into());
    };
    let seq = rest
        .get(..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_le_bytes)
        .ok_or("no sequence number")?;
    let rest = &rest[8..];
    match kind {
        KIND_PUBLISH => Ok(Record::Publish {
            seq,
            publish: Box::new(decode_publish(rest)?),
        }),
        KIND_ACK if rest.is_empty() => Ok(Record::Ack { seq }),
        KIND_ACK => Err("bytes after an acknowledgement".into()),
        other => Err(format!("unknown record kind {other}")),
    }
}

fn decode_publish(bytes: &[u8]) -> Result<Publish, String> {
    let mut buf = BytesMut::from(bytes);
    match packet::decode(&mut buf, ProtocolVersion::V5, bytes.len()) {
        Ok(Some(Packet::Publish(mut publish))) if buf.is_empty() => {
            if publish.qos != QoS::AtLeastOnce {
                return Err(format!("a stored publish at {:?}", publish.qos));
            }
            publish.packet_id = None;
            publish.dup = false;
            Ok(publish)
        }
        Ok(Some(Packet::Publish(_))) => Err("bytes after the PUBLISH packet".into()),
        Ok(Some(other)) => Err(format!(
            "a {:?} packet instead of PUBLISH",
            other.packet_type()
        )),
        Ok(None) => Err("an incomplete PUBLISH packet".into()),
        Err(e) => Err(format!("PUBLISH packet: {e}")),
    }
}

/// Applies a record to the pending publishes.
fn apply(
    record: Record,
    range: Range<usize>,
    pending: &mut BTreeMap<u64, PendingPublish>,
    contents: &mut StoreContents,
) -> Result<(), String> {
    match record {
        Record::Publish { seq, publish } => {
            if seq < contents.next_seq {
                return Err(format!(
                    "publish {seq} is out of order (the next one is {})",
                    contents.next_seq
                ));
            }
            contents.next_seq = seq.checked_add(1).ok_or("sequence numbers exhausted")?;
            pending.insert(
                seq,
                PendingPublish {
                    seq,
                    publish: *publish,
                    record: range,
                },
            );
        }
        // An acknowledgement of a publish compacted away, or acknowledged
        // twice, changes nothing.
        Record::Ack { seq } => {
            pending.remove(&seq);
        }
    }
    Ok(())
}

/// Appends the record of publish `seq` to `out`; returns its length.
pub(crate) fn encode_publish(
    seq: u64,
    publish: &Publish,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut stored = publish.clone();
    stored.qos = QoS::AtLeastOnce;
    stored.dup = false;
    stored.packet_id = Some(PLACEHOLDER_PACKET_ID);
    let mut packet = BytesMut::new();
    Packet::Publish(stored).encode(ProtocolVersion::V5, &mut packet)?;
    Ok(encode_record(KIND_PUBLISH, seq, &packet, out))
}

/// Appends the record saying publish `seq` is done to `out`; returns its length.
pub(crate) fn encode_ack(seq: u64, out: &mut Vec<u8>) -> usize {
    encode_record(KIND_ACK, seq, &[], out)
}

fn encode_record(kind: u8, seq: u64, rest: &[u8], out: &mut Vec<u8>) -> usize {
    let mut body = Vec::with_capacity(BODY_HEADER + rest.len());
    body.push(kind);
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(rest);
    // MQTT caps a packet at 256 MiB, far below u32::MAX.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    RECORD_HEADER + body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: u32) -> Publish {
        let mut p = Publish::new(
            format!("dt/t/{i}"),
            format!("payload {i}"),
            QoS::AtLeastOnce,
        );
        p.retain = i % 2 == 0;
        p
    }

    /// A file with publishes 0..n, and acknowledgements of `acked`.
    fn file(n: u32, acked: &[u64]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for i in 0..n {
            encode_publish(u64::from(i), &message(i), &mut out).unwrap();
        }
        for &seq in acked {
            encode_ack(seq, &mut out);
        }
        out
    }

    fn seqs(contents: &StoreContents) -> Vec<u64> {
        contents.pending.iter().map(|p| p.seq).collect()
    }

    #[test]
    fn publishes_read_back_in_order_minus_the_acknowledged_ones() {
        let bytes = file(5, &[1, 3]);
        let contents = parse(&bytes).unwrap();
        assert_eq!(seqs(&contents), [0, 2, 4]);
        assert_eq!(contents.pending[1].publish, message(2));
        assert_eq!(contents.valid_len, bytes.len());
        assert_eq!(contents.damage, None);
        assert_eq!(contents.next_seq, 5);
    }

    #[test]
    fn mqtt5_properties_and_the_retain_flag_survive() {
        let mut publish = message(0);
        publish.properties.content_type = Some("application/json".into());
        publish.properties.user_properties = vec![("k".into(), "v".into())];
        let mut bytes = MAGIC.to_vec();
        encode_publish(7, &publish, &mut bytes).unwrap();
        let contents = parse(&bytes).unwrap();
        assert_eq!(contents.pending[0].publish, publish);
        assert_eq!(contents.pending[0].record, MAGIC.len()..bytes.len());
    }

    #[test]
    fn an_empty_file_or_a_torn_header_is_an_empty_store() {
        assert_eq!(parse(b"").unwrap(), StoreContents::default());
        let torn = parse(&MAGIC[..3]).unwrap();
        assert!(torn.pending.is_empty());
        assert_eq!(torn.valid_len, 0);
        assert_eq!(torn.damage, Some(Damage::Torn { offset: 0 }));
    }

    #[test]
    fn another_file_is_not_taken_for_a_store() {
        assert_eq!(parse(b"{\"not\": \"a store\"}"), Err(NotAStore));
        assert_eq!(
            parse(b"I"),
            Ok(StoreContents {
                damage: Some(Damage::Torn { offset: 0 }),
                ..StoreContents::default()
            })
        );
        assert_eq!(parse(b"X"), Err(NotAStore));
    }

    #[test]
    fn a_file_cut_anywhere_reads_back_every_whole_record_before_the_cut() {
        // Publishes 0, 1, 2, then the acknowledgement of 0: where each record
        // ends, and what is pending once it is read.
        let mut bytes = MAGIC.to_vec();
        let mut boundaries = vec![bytes.len()];
        let mut expected: Vec<Vec<u64>> = vec![vec![]];
        for i in 0..3u32 {
            encode_publish(u64::from(i), &message(i), &mut bytes).unwrap();
            boundaries.push(bytes.len());
            expected.push((0..=u64::from(i)).collect());
        }
        encode_ack(0, &mut bytes);
        boundaries.push(bytes.len());
        expected.push(vec![1, 2]);
        for cut in MAGIC.len()..=bytes.len() {
            let k = boundaries.iter().rposition(|&b| b <= cut).unwrap();
            let contents = parse(&bytes[..cut]).unwrap();
            assert_eq!(seqs(&contents), expected[k], "cut at {cut}");
            assert_eq!(contents.valid_len, boundaries[k], "cut at {cut}");
            let torn = (cut > boundaries[k]).then_some(Damage::Torn {
                offset: boundaries[k],
            });
            assert_eq!(contents.damage, torn, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_keeps_the_records_before_it_and_drops_the_rest() {
        let bytes = file(3, &[]);
        let contents = parse(&bytes).unwrap();
        let second = contents.pending[1].record.clone();
        for at in second.clone() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            let read = parse(&damaged).unwrap();
            assert_eq!(seqs(&read), [0], "byte {at} flipped");
            assert_eq!(read.valid_len, second.start);
            assert_eq!(read.damage.as_ref().map(Damage::offset), Some(second.start));
        }
    }

    #[test]
    fn a_record_with_a_good_checksum_but_a_bad_body_is_invalid() {
        let mut bytes = MAGIC.to_vec();
        encode_record(9, 0, b"", &mut bytes);
        let read = parse(&bytes).unwrap();
        assert!(
            matches!(read.damage, Some(Damage::Invalid { offset: 8, .. })),
            "{read:?}"
        );

        let mut bytes = MAGIC.to_vec();
        encode_record(KIND_PUBLISH, 0, b"\x30\x00", &mut bytes); // a QoS 0 PUBLISH, cut
        assert!(matches!(
            parse(&bytes).unwrap().damage,
            Some(Damage::Invalid { .. })
        ));

        let mut bytes = file(2, &[]);
        encode_publish(1, &message(9), &mut bytes).unwrap();
        let read = parse(&bytes).unwrap();
        assert_eq!(
            seqs(&read),
            [0, 1],
            "a repeated sequence number stops the reading"
        );
        assert!(matches!(read.damage, Some(Damage::Invalid { .. })));
    }

    #[test]
    fn random_damage_never_panics_and_never_invents_a_publish() {
        use rand::{Rng, SeedableRng};
        let original = file(6, &[2]);
        let known: Vec<Publish> = (0..6).map(message).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for _ in 0..3000 {
            let mut bytes = original.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes[at] ^= 1 << rng.random_range(0..8),
                    1 => bytes[at] = rng.random(),
                    2 => bytes.truncate(at),
                    _ => bytes.insert(at, rng.random()),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let Ok(contents) = parse(&bytes) else {
                continue;
            };
            assert!(contents.valid_len <= bytes.len());
            for p in &contents.pending {
                // A damaged record passes its CRC-32 only by a 2^-32 chance.
                assert!(known.contains(&p.publish), "{:?}", p.publish);
                assert!(p.record.end <= contents.valid_len);
            }
        }
    }

    #[test]
    fn a_length_claiming_more_than_the_file_is_a_torn_record() {
        let mut bytes = file(1, &[]);
        let end = bytes.len();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 12]);
        let read = parse(&bytes).unwrap();
        assert_eq!(read.damage, Some(Damage::Torn { offset: end }));
        assert_eq!(seqs(&read), [0]);
    }
}
