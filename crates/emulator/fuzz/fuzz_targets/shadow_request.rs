//! Shadow requests from devices: `topic NUL payload`, repeated; each applied
//! in turn to one shadow, ten hours apart (so that a deleted shadow's version
//! is sometimes kept, sometimes forgotten).
#![no_main]

use iotcore_model::shadow::StoredShadow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut shadow = StoredShadow::default();
    let mut fields = data.split(|&b| b == 0);
    let mut now = 1_700_000_000;
    while let (Some(topic), Some(payload)) = (fields.next(), fields.next()) {
        let topic = String::from_utf8_lossy(topic);
        let _ = iotcore_emulator::fuzzing::shadow_request(&mut shadow, &topic, payload, now);
        now += 36_000;
    }
});
