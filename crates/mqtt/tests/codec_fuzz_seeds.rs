//! The fuzzer's checked-in seeds (`fuzz/seeds/`) are hand-written packets;
//! each must decode completely and survive a re-encode, so the fuzzer starts
//! from valid input. Regression inputs found by fuzzing live here too.

use std::path::Path;

use bytes::BytesMut;
use iotcore_mqtt::ProtocolVersion;
use iotcore_mqtt::packet::{MAX_PACKET_SIZE, decode};

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
