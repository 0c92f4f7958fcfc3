//! IoT policy documents (CreatePolicy, CreatePolicyVersion, an authorizer's
//! answer): parsed, and when accepted compiled for a connection and evaluated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = iotcore_emulator::fuzzing::policy_document(text);
    }
});
