//! Feeds arbitrary bytes to the MQTT decoder, as both protocol versions and
//! with a small packet size limit. Every packet that decodes must re-encode,
//! with `encoded_len` predicting its size, and decode back to itself.
#![no_main]

use bytes::BytesMut;
use iotcore_mqtt::ProtocolVersion;
use iotcore_mqtt::packet::{MAX_PACKET_SIZE, decode};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer reaches `PacketTooLarge` easily.
const MAX_SIZE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode(&mut buf, version, MAX_SIZE) {
            let mut out = BytesMut::new();
            if let Err(e) = packet.encode(version, &mut out) {
                panic!("decoded {packet:?} does not re-encode: {e}");
            }
            assert_eq!(packet.encoded_len(version), Ok(out.len()));
            let again = decode(&mut out, version, MAX_PACKET_SIZE);
            assert_eq!(
                again,
                Ok(Some(packet)),
                "re-encoded packet decodes differently"
            );
            assert!(out.is_empty(), "re-encoded packet left {} bytes", out.len());
        }
    }
});
