//! The fuzzer's checked-in seeds (`fuzz/seeds/`) are hand-written packets;
//! each must decode completely and survive a re-encode, so the fuzzer starts
//! from valid input. Regression inputs found by fuzzing live here too. Then
//! the fuzz target's own check on a few thousand mutations of the seeds: the
//! fuzz smoke of the test command (docs/fuzzing.md).

use std::path::Path;

use bytes::BytesMut;
use iotcore_mqtt::ProtocolVersion;
use iotcore_mqtt::packet::{MAX_PACKET_SIZE, decode};
use iotcore_test_support::Mutator;

#[test]
fn every_fuzz_seed_is_a_sequence_of_valid_packets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds exists") {
        let path = entry.expect("readable directory").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version = if name.contains("v5") {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        };
        let mut buf = BytesMut::from(&std::fs::read(&path).expect("readable seed")[..]);
        let mut packets = 0;
        while !buf.is_empty() {
            let packet = decode(&mut buf, version, MAX_PACKET_SIZE)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .unwrap_or_else(|| panic!("{name}: ends in an incomplete packet"));
            let mut out = BytesMut::new();
            packet.encode(version, &mut out).expect("re-encodes");
            assert_eq!(decode(&mut out, version, MAX_PACKET_SIZE), Ok(Some(packet)));
            packets += 1;
        }
        assert!(packets > 0, "{name} is empty");
        seeds += 1;
    }
    assert!(seeds >= 10, "only {seeds} seeds in {}", dir.display());
}

/// What the fuzz target checks: every packet that decodes (under a small
/// size limit, as either version) re-encodes, with `encoded_len` predicting
/// its size, and decodes back to itself.
fn decodes_or_fails_cleanly(data: &[u8]) {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode(&mut buf, version, 1024) {
            let mut out = BytesMut::new();
            packet.encode(version, &mut out).expect("re-encodes");
            assert_eq!(packet.encoded_len(version), Ok(out.len()));
            assert_eq!(decode(&mut out, version, MAX_PACKET_SIZE), Ok(Some(packet)));
            assert!(out.is_empty());
        }
    }
}

#[test]
fn mutations_of_the_seeds_decode_or_fail_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz/seeds exists")
        .map(|entry| entry.expect("readable directory").path())
        .collect();
    paths.sort();
    let mut mutator = Mutator::new();
    for path in paths {
        let seed = std::fs::read(path).expect("readable seed");
        decodes_or_fails_cleanly(&seed);
        for _ in 0..500 {
            decodes_or_fails_cleanly(&mutator.mutate(&seed));
        }
    }
}
