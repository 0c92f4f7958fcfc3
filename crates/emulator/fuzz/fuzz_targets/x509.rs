//! Certificate signing requests (CreateCertificateFromCsr, fleet
//! provisioning) signed by the emulator's CA, and device certificates read
//! for their policy variables: DER bytes.
#![no_main]

use std::sync::OnceLock;

use iotcore_emulator::pki::Pki;
use libfuzzer_sys::fuzz_target;

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().expect("a temporary directory")));
        Pki::load_or_create(dir.path()).expect("a CA")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = iotcore_emulator::fuzzing::x509(pki(), data);
});
