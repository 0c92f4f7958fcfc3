//! Custom authorizers: what AWS IoT Core does with a connection that
//! presents a token instead of a certificate or a SigV4 signature
//! (docs/aws-iot-core-behaviour.md §1.13; research wave2-protocols.md §2).
//!
//! 1. The authorizer is the one the request names (`x-amz-customauthorizer-name`
//!    in the MQTT username's query, the upgrade's headers or query), or the
//!    account's default one; it must be `ACTIVE`.
//! 2. With signing on, the token (the parameter named by the authorizer's
//!    token key name) must carry `x-amz-customauthorizer-signature`, an RSA
//!    SHA-256 PKCS#1 v1.5 signature of the token by one of the authorizer's
//!    public keys; otherwise the request is refused *without* invoking the
//!    function.
//! 3. The function gets AWS's Lambda input event ([`event`]) and answers
//!    AWS's response ([`response`]). In the emulator the function is a local
//!    command (`sh -c`), the event on its stdin, the response on its stdout,
//!    5 seconds at most (AWS's limit for an authorizer's Lambda).
//!
//! Every refusal is an [`AuthorizerError`] that says what went wrong; a
//! command that crashes, hangs or prints garbage is a refusal, never a crash.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::store::{AuthorizerRecord, Store, StoreError};

pub(crate) mod event;
pub(crate) mod response;
pub(crate) mod signature;

pub(crate) use event::{AuthRequest, HttpContext, MqttContext};
pub(crate) use response::Authorization;

/// How long the function may take: AWS's 5-second limit for authorizers.
pub(crate) const FUNCTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of the function's stdout read.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The query parameter (or header) naming the authorizer.
pub(crate) const NAME_PARAMETER: &str = "x-amz-customauthorizer-name";
/// The query parameter (or header) carrying the token's signature.
pub(crate) const SIGNATURE_PARAMETER: &str = "x-amz-customauthorizer-signature";

/// Why a custom authorizer refused a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AuthorizerError {
    /// No authorizer was named and there is no default one.
    #[error(
        "no custom authorizer named (x-amz-customauthorizer-name) and no default authorizer set"
    )]
    NoAuthorizer,
    /// The named authorizer does not exist.
    #[error("custom authorizer {0:?} does not exist")]
    UnknownAuthorizer(String),
    /// The authorizer is `INACTIVE`.
    #[error("custom authorizer {0:?} is INACTIVE")]
    Inactive(String),
    /// Signing is on but the token (or its signature) is missing.
    #[error("custom authorizer {name:?} verifies signed tokens, but the request has no {missing}")]
    Unsigned {
        /// The authorizer.
        name: String,
        /// What is missing.
        missing: String,
    },
    /// The token's signature is not valid for any of the authorizer's keys.
    #[error(
        "custom authorizer {name:?}: the token's signature is invalid ({why}); the function was not invoked"
    )]
    BadSignature {
        /// The authorizer.
        name: String,
        /// Why.
        why: String,
    },
    /// The command could not be run, crashed, or took too long.
    #[error("custom authorizer {name:?}: its function (command {command:?}) failed: {why}")]
    Function {
        /// The authorizer.
        name: String,
        /// The command.
        command: String,
        /// What happened.
        why: String,
    },
    /// The function's answer is not AWS's response shape.
    #[error("custom authorizer {name:?}: its function's response is invalid: {why}")]
    InvalidResponse {
        /// The authorizer.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The function answered `isAuthenticated: false`.
    #[error("custom authorizer {name:?} denied the connection (isAuthenticated: false)")]
    Denied {
        /// The authorizer.
        name: String,
    },
    /// The registry could not be read.
    #[error("registry lookup failed: {0}")]
    Store(#[from] StoreError),
}

/// Authenticates a connection: [`invoke`], and the function must have
/// answered `isAuthenticated: true`.
pub(crate) async fn authorize(
    store: &Store,
    request: &AuthRequest,
) -> Result<Authorization, AuthorizerError> {
    let authorization = invoke(store, request).await?;
    if !authorization.is_authenticated {
        return Err(AuthorizerError::Denied {
            name: authorization.authorizer,
        });
    }
    Ok(authorization)
}

/// Resolves the authorizer `request` names (or the default one), checks
/// its token's signature, runs its function and reads its answer, whatever
/// it decided (TestInvokeAuthorizer's view).
pub(crate) async fn invoke(
    store: &Store,
    request: &AuthRequest,
) -> Result<Authorization, AuthorizerError> {
    let record = {
        let store = store.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || resolve(&store, &request))
            .await
            .map_err(|e| AuthorizerError::Function {
                name: String::new(),
                command: String::new(),
                why: format!("the registry lookup failed: {e}"),
            })??
    };
    let invocation = check_token(&record, request)?;
    let output = run_function(&record, &invocation).await?;
    response::parse(&record.name, &output)
}

/// The authorizer of `request`: the one it names, or the default one.
fn resolve(store: &Store, request: &AuthRequest) -> Result<AuthorizerRecord, AuthorizerError> {
    let record = match request.parameter(NAME_PARAMETER) {
        Some(name) => store
            .authorizer(&name)?
            .ok_or(AuthorizerError::UnknownAuthorizer(name))?,
        None => store
            .default_authorizer()?
            .ok_or(AuthorizerError::NoAuthorizer)?,
    };
    if record.status != "ACTIVE" {
        return Err(AuthorizerError::Inactive(record.name));
    }
    Ok(record)
}

/// What the function is invoked with: the event, its JSON.
#[derive(Debug)]
struct Invocation {
    event: String,
}

/// Finds the token and, with signing on, verifies its signature; the event
/// for the function.
fn check_token(
    record: &AuthorizerRecord,
    request: &AuthRequest,
) -> Result<Invocation, AuthorizerError> {
    let token = record
        .token_key_name
        .as_deref()
        .and_then(|key| request.parameter(key));
    let token = token.as_deref();
    let mut signature_verified = false;
    if !record.signing_disabled {
        let unsigned = |missing: String| AuthorizerError::Unsigned {
            name: record.name.clone(),
            missing,
        };
        let key_name = record
            .token_key_name
            .as_deref()
            .unwrap_or("(no token key name)");
        let token = token.ok_or_else(|| unsigned(format!("token ({key_name})")))?;
        let signature = request
            .parameter(SIGNATURE_PARAMETER)
            .ok_or_else(|| unsigned(format!("signature ({SIGNATURE_PARAMETER})")))?;
        signature::verify(&record.token_signing_public_keys, token, &signature).map_err(|why| {
            AuthorizerError::BadSignature {
                name: record.name.clone(),
                why,
            }
        })?;
        signature_verified = true;
    }
    Ok(Invocation {
        event: request.event(token, signature_verified),
    })
}

/// Runs the authorizer's command with the event on stdin; its stdout.
async fn run_function(
    record: &AuthorizerRecord,
    invocation: &Invocation,
) -> Result<Vec<u8>, AuthorizerError> {
    let failed = |why: String| AuthorizerError::Function {
        name: record.name.clone(),
        command: record.function.clone(),
        why,
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&record.function)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    let mut stdin = child.stdin.take();
    let event = invocation.event.clone();
    let run = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A command that does not read its input is not an error.
            let _ = stdin.write_all(event.as_bytes()).await;
        }
        drop(stdin);
        child.wait_with_output().await
    };
    let output = match tokio::time::timeout(FUNCTION_TIMEOUT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(failed(format!("waiting for it failed: {e}"))),
        Err(_) => {
            return Err(failed(format!(
                "it did not answer within {} s (AWS's limit for an authorizer)",
                FUNCTION_TIMEOUT.as_secs()
            )));
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        return Err(failed(format!(
            "it exited with {}{}",
            output.status,
            if stderr.is_empty() {
                String::new()
            } else {
                format!("; stderr: {}", truncate(stderr, 500))
            }
        )));
    }
    let mut stdout = output.stdout;
    stdout.truncate(MAX_OUTPUT_BYTES);
    Ok(stdout)
}

/// `text` cut to at most `max` characters.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
