//! The fuzz smoke of the test command: every fuzz target's entry point
//! (`iotcore_emulator::fuzzing`) over its checked-in seeds (`fuzz/seeds/<target>/`)
//! and a few thousand deterministic mutations of them, without the fuzzer's
//! nightly build. A seed whose name says `refused` must be refused, every
//! other one accepted, so that the seeds stay realistic inputs that reach deep
//! into the parsers; no input may panic. Inputs that once crashed a target live
//! in the seeds too. The long runs are in docs/fuzzing.md.

use std::path::Path;

use iotcore_emulator::fuzzing;
use iotcore_emulator::pki::Pki;
use iotcore_model::shadow::StoredShadow;
use iotcore_test_support::{Mutator, read_seeds};

/// Mutations tried per seed.
const MUTATIONS_PER_SEED: usize = 600;

/// The seeds of `target`, by file name, sorted.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    read_seeds(&dir)
}

/// Runs `entry` on every seed of `target`, checking it is accepted or
/// refused as its name says, then on its mutations.
fn smoke(target: &str, entry: impl Fn(&[u8]) -> Result<(), String>) {
    let mut mutator = Mutator::new();
    for (name, seed) in seeds(target) {
        let result = entry(&seed);
        if name.contains("refused") {
            assert!(result.is_err(), "{target}/{name} is accepted");
        } else if let Err(e) = result {
            panic!("{target}/{name} is refused: {e}");
        }
        for _ in 0..MUTATIONS_PER_SEED {
            let _ = entry(&mutator.mutate(&seed));
        }
    }
}

/// `first NUL rest`, `rest` empty without a NUL.
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

#[test]
fn policy_documents() {
    smoke("policy_document", |data| {
        fuzzing::policy_document(std::str::from_utf8(data).map_err(|e| e.to_string())?)
    });
}

#[test]
fn shadow_requests() {
    // `topic NUL payload`, repeated, applied in turn to one shadow: a seed is
    // accepted when every request in it is.
    smoke("shadow_request", |data| {
        let mut shadow = StoredShadow::default();
        let mut fields = data.split(|&b| b == 0);
        let mut outcome = Ok(());
        let mut now = 1_700_000_000;
        while let (Some(topic), Some(payload)) = (fields.next(), fields.next()) {
            let topic = String::from_utf8_lossy(topic);
            let result = fuzzing::shadow_request(&mut shadow, &topic, payload, now);
            outcome = outcome.and(result.map_err(|e| e.to_string()));
            now += 36_000;
        }
        outcome
    });
}

#[test]
fn provisioning_templates() {
    smoke("provisioning_template", |data| {
        let (body, request) = split_nul(data);
        let body = std::str::from_utf8(body).map_err(|e| e.to_string())?;
        fuzzing::provisioning_template(body, request)
    });
}

#[test]
fn certificate_signing_requests_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    smoke("x509", |data| fuzzing::x509(&pki, data));
}

#[test]
fn sigv4_signed_http_requests() {
    smoke("sigv4_request", fuzzing::sigv4_request);
}

#[test]
fn websocket_upgrades() {
    smoke("websocket_upgrade", fuzzing::websocket_upgrade);
}

#[test]
fn custom_authorizer_answers() {
    // The username seed is no answer: it is there for the parameters.
    smoke("authorizer_response", fuzzing::authorizer_response);
}

#[test]
fn jobs_requests() {
    smoke("jobs_request", |data| {
        let (topic, payload) = split_nul(data);
        fuzzing::jobs_request(&String::from_utf8_lossy(topic), payload)
    });
}
