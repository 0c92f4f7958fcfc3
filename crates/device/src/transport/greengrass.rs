//! The Greengrass core door: MQTT over mutual TLS to a core device's local
//! broker, found by Greengrass discovery ([`crate::greengrass`]).
//!
//! Each connection attempt walks the discovered addresses in order (group,
//! core, connectivity entry: what AWS's `basic_discovery` sample does),
//! starting from the one that answered last, each with its group's CAs as the
//! only trust anchors and its host as the TLS server name. When every address
//! of the last discovery fails (the core's CA was rotated, its addresses
//! changed, the core moved), the attempt asks discovery again and walks the
//! new answer once; the driver's backoff spaces the attempts after that.

use std::sync::{Mutex, PoisonError};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::tls::{TlsSetup, client_config, server_name};
use super::{Stream, tcp};
use crate::credentials::Identity;
use crate::greengrass::{CoreAddress, DiscoverResponse, DiscoveryEndpoint, discover};
use crate::status::DisconnectReason;

/// The door's settings and what it learnt.
#[derive(Debug)]
pub(crate) struct GreengrassSetup {
    pub(crate) identity: Identity,
    pub(crate) discovery: DiscoveryEndpoint,
    pub(crate) thing: String,
    /// The last discovery, and the index of the candidate that answered.
    found: tokio::sync::Mutex<Option<(DiscoverResponse, usize)>>,
    /// The address of the current (or last) connection.
    answered: Mutex<Option<CoreAddress>>,
}

impl GreengrassSetup {
    pub(crate) fn new(identity: Identity, discovery: DiscoveryEndpoint, thing: String) -> Self {
        GreengrassSetup {
            identity,
            discovery,
            thing,
            found: tokio::sync::Mutex::new(None),
            answered: Mutex::new(None),
        }
    }

    /// The core address the client is (or was last) connected to.
    pub(crate) fn answered(&self) -> Option<CoreAddress> {
        self.answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One connection attempt: a stream to the first core address that
    /// completes TLS, discovering (again) when needed.
    pub(crate) async fn connect(&self) -> Result<Stream, DisconnectReason> {
        let mut found = self.found.lock().await;
        let mut fresh = false;
        loop {
            if found.is_none() {
                let response = discover(&self.identity, &self.discovery, &self.thing)
                    .await
                    .map_err(|e| DisconnectReason::DiscoveryFailed {
                        refused: e.is_refusal(),
                        detail: e.to_string(),
                    })?;
                *found = Some((response, 0));
                fresh = true;
            }
            let (response, preferred) = found.as_mut().expect("set above");
            let candidates: Vec<_> = response.candidates().collect();
            if candidates.is_empty() {
                return Err(DisconnectReason::DiscoveryFailed {
                    refused: true,
                    detail: format!(
                        "discovery listed no core address for thing {:?}",
                        self.thing
                    ),
                });
            }
            let order = (0..candidates.len()).map(|i| (*preferred + i) % candidates.len());
            let mut last = None;
            for index in order {
                let (group, core, address) = candidates[index];
                let at = CoreAddress {
                    core_thing_arn: core.thing_arn.clone(),
                    host: address.host_address.clone(),
                    port: address.port,
                };
                match self.open(&group.cas, &at).await {
                    Ok(stream) => {
                        tracing::info!(core = %at.core_thing_arn, host = %at.host, port = at.port, "connected to a Greengrass core");
                        *preferred = index;
                        *self.answered.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
                        return Ok(stream);
                    }
                    Err(reason) => {
                        tracing::warn!(core = %at.core_thing_arn, host = %at.host, port = at.port, "Greengrass core address failed: {reason}");
                        last = Some(reason);
                    }
                }
            }
            if fresh {
                return Err(last.expect("at least one candidate"));
            }
            tracing::info!(thing = %self.thing, "every core address failed: discovering again");
            *found = None;
        }
    }

    /// TCP and TLS to `at`, trusting only `cas`.
    async fn open(&self, cas: &[String], at: &CoreAddress) -> Result<Stream, DisconnectReason> {
        let roots = cas
            .iter()
            .map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DisconnectReason::Tls {
                detail: format!("a CA certificate from discovery is not PEM: {e}"),
            })?;
        let config_error = |e: crate::error::ConfigError| DisconnectReason::Tls {
            detail: e.to_string(),
        };
        let tls = TlsSetup {
            config: client_config(Some(&self.identity), &roots, None).map_err(config_error)?,
            server_name: server_name(&at.host).map_err(config_error)?,
        };
        let tcp = tcp::connect(&at.host, at.port, None).await?;
        Ok(Box::new(tls.handshake(Box::new(tcp)).await?))
    }
}
