//! A client's credentials on disk.

use std::path::PathBuf;

/// A client's certificate, key and trusted CA; the thing name is also its client id.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Thing name and MQTT client id.
    pub thing: String,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The CA that signed the broker's certificate (PEM).
    pub ca: PathBuf,
}

impl Identity {
    /// The topic this client publishes its own messages to: `dt/<thing>/bench`.
    pub fn topic(&self) -> String {
        format!("dt/{}/bench", self.thing)
    }

    /// `--cert C --key K --ca A --client-id T`: how the Python peers in
    /// `tests/peers/` take an identity.
    pub fn peer_args(&self) -> Vec<String> {
        let path = |p: &PathBuf| p.display().to_string();
        vec![
            "--cert".into(),
            path(&self.cert),
            "--key".into(),
            path(&self.key),
            "--ca".into(),
            path(&self.ca),
            "--client-id".into(),
            self.thing.clone(),
        ]
    }
}

/// An access key of the emulator, for MQTT over WebSocket signed with SigV4.
#[derive(Clone, Debug)]
pub struct AccessKey {
    /// The access key id (`AKIA…`).
    pub id: String,
    /// The secret access key.
    pub secret: String,
}

impl AccessKey {
    /// `--door websocket-sigv4 --access-key-id I --secret-access-key S`: how
    /// `tests/peers/bench_publish.py` takes it.
    pub fn peer_args(&self) -> Vec<String> {
        vec![
            "--door".into(),
            "websocket-sigv4".into(),
            "--access-key-id".into(),
            self.id.clone(),
            "--secret-access-key".into(),
            self.secret.clone(),
        ]
    }
}
