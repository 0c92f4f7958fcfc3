//! Pre-provisioning hooks: AWS calls a Lambda function before each
//! RegisterThing; the emulator runs a local command instead, given to the
//! template (`iotcore template create … --hook-command CMD`).
//!
//! The command runs with `/bin/sh -c CMD`. It reads AWS's Lambda input as JSON
//! on stdin —
//!
//! ```json
//! {"claimCertificateId": "…", "certificateId": "…", "certificatePem": "…",
//!  "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/fleet",
//!  "clientId": "…", "parameters": {"SerialNumber": "42"}}
//! ```
//!
//! — and writes AWS's Lambda output as JSON on stdout:
//! `{"allowProvisioning": true, "parameterOverrides": {"Key": "value"}}`. The
//! overrides are added to the device's parameters. As with AWS, provisioning
//! is refused (403 `AccessDenied`) unless the answer says
//! `"allowProvisioning": true` (or `"true"`), and also when the command fails,
//! writes something else, or does not finish within 5 seconds (AWS's limit
//! for the Lambda function; the command is killed).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use iotcore_model::provisioning::ProvisioningError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// How long the hook may take (AWS: the Lambda function must return within 5 seconds).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the hook reads on stdin: AWS's pre-provisioning hook input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookInput {
    /// The claim certificate of the connection that asks.
    pub claim_certificate_id: String,
    /// The certificate being provisioned.
    pub certificate_id: String,
    /// That certificate, PEM-encoded.
    pub certificate_pem: String,
    /// `arn:aws:iot:<region>:<account>:provisioningtemplate/<template>`.
    pub template_arn: String,
    /// The MQTT client id of the connection that asks.
    pub client_id: String,
    /// The RegisterThing request's parameters.
    pub parameters: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HookOutput {
    #[serde(default)]
    allow_provisioning: Value,
    #[serde(default)]
    parameter_overrides: Option<BTreeMap<String, Value>>,
}

fn denied(why: impl Into<String>) -> ProvisioningError {
    ProvisioningError::AccessDenied(why.into())
}

/// Runs hook `command` with `input`; returns the parameter overrides when it
/// allows provisioning, and `AccessDenied` saying why otherwise.
pub async fn run_hook(
    command: &str,
    input: &HookInput,
) -> Result<BTreeMap<String, String>, ProvisioningError> {
    run_hook_within(command, input, HOOK_TIMEOUT).await
}

async fn run_hook_within(
    command: &str,
    input: &HookInput,
    timeout: Duration,
) -> Result<BTreeMap<String, String>, ProvisioningError> {
    let stdin = serde_json::to_vec(input).map_err(|e| {
        tracing::error!("cannot encode the pre-provisioning hook input: {e}");
        ProvisioningError::InternalFailure
    })?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| denied(format!("the pre-provisioning hook could not start: {e}")))?;
    let run = async {
        if let Some(mut pipe) = child.stdin.take() {
            // A hook that exits without reading its input is answered by its output.
            if let Err(e) = pipe.write_all(&stdin).await {
                tracing::debug!("the pre-provisioning hook did not read its input: {e}");
            }
        }
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| {
            denied(format!(
                "the pre-provisioning hook did not answer within {timeout:?}"
            ))
        })?
        .map_err(|e| denied(format!("the pre-provisioning hook failed: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr.lines().next().unwrap_or("").trim();
        tracing::warn!(command, status = %output.status, stderr = %stderr, "pre-provisioning hook failed");
        return Err(denied(format!(
            "the pre-provisioning hook failed ({}){}",
            output.status,
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        )));
    }
    let answer: HookOutput = serde_json::from_slice(&output.stdout).map_err(|e| {
        denied(format!(
            "the pre-provisioning hook did not answer with {{\"allowProvisioning\": …}}: {e}"
        ))
    })?;
    let allowed = match &answer.allow_provisioning {
        Value::Bool(allowed) => *allowed,
        Value::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !allowed {
        return Err(denied(
            "the pre-provisioning hook did not allow provisioning",
        ));
    }
    answer
        .parameter_overrides
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key, text)),
            other => Err(denied(format!(
                "the pre-provisioning hook's parameterOverrides.{key} is {other}, not a string"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> HookInput {
        HookInput {
            claim_certificate_id: "claim".into(),
            certificate_id: "cert".into(),
            certificate_pem: "pem".into(),
            template_arn: "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/t".into(),
            client_id: "client".into(),
            parameters: [("Serial".to_owned(), "42".to_owned())].into(),
        }
    }

    #[tokio::test]
    async fn an_allowing_hook_sees_the_input_and_overrides_parameters() {
        // The hook echoes the serial it read, so the test sees the input arrived.
        let command = r#"serial=$(sed 's/.*"Serial":"\([^"]*\)".*/\1/'); printf '{"allowProvisioning": true, "parameterOverrides": {"Seen": "%s"}}' "$serial""#;
        let overrides = run_hook(command, &input()).await.unwrap();
        assert_eq!(overrides, [("Seen".to_owned(), "42".to_owned())].into());
        let overrides = run_hook(
            r#"cat >/dev/null; echo '{"allowProvisioning": "true"}'"#,
            &input(),
        )
        .await
        .unwrap();
        assert!(overrides.is_empty());
    }

    #[tokio::test]
    async fn every_other_answer_denies_with_the_reason() {
        let cases = [
            (r#"echo '{"allowProvisioning": false}'"#, "did not allow"),
            (r#"echo '{}'"#, "did not allow"),
            ("echo not-json", "did not answer with"),
            ("echo oops >&2; exit 3", "oops"),
            (
                r#"echo '{"allowProvisioning": true, "parameterOverrides": {"a": 1}}'"#,
                "parameterOverrides.a",
            ),
        ];
        for (command, needle) in cases {
            let err = run_hook(command, &input()).await.unwrap_err();
            assert_eq!(err.status_code(), 403, "{command}");
            assert_eq!(err.error_code(), "AccessDenied");
            assert!(err.to_string().contains(needle), "{command}: {err}");
        }
    }

    #[tokio::test]
    async fn a_hook_that_does_not_answer_in_time_is_killed_and_denies() {
        let timeout = Duration::from_millis(200);
        let err = run_hook_within("exec sleep 30", &input(), timeout)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("did not answer within"), "{err}");
    }
}
