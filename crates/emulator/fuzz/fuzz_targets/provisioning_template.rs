//! Fleet provisioning templates (CreateProvisioningTemplate): `template NUL
//! RegisterThing request`; an accepted template is applied to the request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (body, request) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    if let Ok(body) = std::str::from_utf8(body) {
        let _ = iotcore_emulator::fuzzing::provisioning_template(body, request);
    }
});
