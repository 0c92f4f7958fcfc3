//! MQTT-over-WebSocket upgrade requests: a raw HTTP/1.1 request checked by
//! the WebSocket door (path, headers, subprotocol, presigned SigV4 query).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iotcore_emulator::fuzzing::websocket_upgrade(data);
});
