//! Jobs requests from devices: `topic NUL payload`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let topic = String::from_utf8_lossy(topic);
    let _ = iotcore_emulator::fuzzing::jobs_request(&topic, payload);
});
