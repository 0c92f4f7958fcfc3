//! A custom authorizer command's answer (AWS's Lambda response), and an MQTT
//! username's query read for the authorizer's parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iotcore_emulator::fuzzing::authorizer_response(data);
});
