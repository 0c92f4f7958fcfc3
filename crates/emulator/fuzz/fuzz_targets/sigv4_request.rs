//! HTTPS API requests: a raw HTTP/1.1 request whose SigV4 signature
//! (`Authorization` header or presigned query) is parsed and verified.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iotcore_emulator::fuzzing::sigv4_request(data);
});
