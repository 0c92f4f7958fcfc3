//! Encode and decode of a QoS 1 PUBLISH, MQTT 3.1.1 and 5.0, at 64 B, 1 KiB
//! and 64 KiB payloads. Run with `cargo bench -p iotcore-mqtt --bench codec`.
//!
//! Encoding reuses one output buffer (as a connection does); decoding starts
//! each iteration from a fresh copy of the wire bytes, made outside the timing.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iotcore_mqtt::packet::{MAX_PACKET_SIZE, Publish, decode};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS};

const PAYLOADS: [(&str, usize); 3] = [("64B", 64), ("1KiB", 1024), ("64KiB", 64 * 1024)];

/// A QoS 1 PUBLISH as a device sends telemetry; MQTT 5 adds the properties a
/// request/response client typically sets.
fn publish(version: ProtocolVersion, payload_len: usize) -> Packet {
    let mut publish = Publish::new(
        "dt/factory-7/line-3/thing-0042/telemetry",
        Bytes::from(vec![0x5A; payload_len]),
        QoS::AtLeastOnce,
    );
    publish.packet_id = Some(4242);
    if version == ProtocolVersion::V5 {
        publish.properties.payload_format_indicator = Some(1);
        publish.properties.content_type = Some("application/json".into());
        publish
            .properties
            .user_properties
            .push(("trace".into(), "0af7651916cd43dd".into()));
    }
    Packet::Publish(publish)
}

fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V311 => "v3.1.1",
        ProtocolVersion::V5 => "v5",
    }
}

fn encode_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_publish_qos1");
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for (label, len) in PAYLOADS {
            let packet = publish(version, len);
            let mut out = BytesMut::with_capacity(len + 256);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::new(version_name(version), label), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(&packet)
                        .encode(version, &mut out)
                        .expect("encodes");
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

fn decode_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_publish_qos1");
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for (label, len) in PAYLOADS {
            let mut wire = BytesMut::new();
            publish(version, len)
                .encode(version, &mut wire)
                .expect("encodes");
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::new(version_name(version), label), |b| {
                b.iter_batched(
                    || BytesMut::from(&wire[..]),
                    |mut buf| {
                        decode(&mut buf, version, MAX_PACKET_SIZE)
                            .expect("decodes")
                            .expect("whole packet")
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, encode_publish, decode_publish);
criterion_main!(benches);
