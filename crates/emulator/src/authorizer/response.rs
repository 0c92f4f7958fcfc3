//! The authorizer function's answer, as AWS's Lambda response (AWS IoT
//! developer guide, "Defining your Lambda function"; research
//! wave2-protocols.md §2.4):
//!
//! ```json
//! {"isAuthenticated": true, "principalId": "abc123",
//!  "disconnectAfterInSeconds": 86400, "refreshAfterInSeconds": 300,
//!  "policyDocuments": [{"Version": "2012-10-17", "Statement": [...]}]}
//! ```
//!
//! `policyDocuments` may hold objects or JSON strings (TestInvokeAuthorizer
//! returns strings); at most 10, each at most 2048 characters, each a valid
//! AWS IoT policy. `principalId` is `[a-zA-Z0-9]{1,128}`.
//! `disconnectAfterInSeconds` and `refreshAfterInSeconds` are 300–86,400 on
//! AWS; the emulator also honours shorter ones (from 1 s), with a warning, so
//! that tests need not wait five minutes (§8).

use std::time::Duration;

use serde_json::Value;

use super::AuthorizerError;
use crate::policy::PolicyDocument;

/// The most policy documents a response may hold.
const MAX_POLICIES: usize = 10;
/// AWS's shortest `disconnectAfterInSeconds` / `refreshAfterInSeconds`.
const AWS_MIN_SECONDS: u64 = 300;
/// The longest.
const MAX_SECONDS: u64 = 86_400;

/// What an authorizer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    /// The authorizer's name.
    pub(crate) authorizer: String,
    /// `isAuthenticated`.
    pub(crate) is_authenticated: bool,
    /// `principalId` (empty when not authenticated and none was given).
    pub(crate) principal_id: String,
    /// The policy documents, as JSON text.
    pub(crate) policy_documents: Vec<String>,
    /// `disconnectAfterInSeconds`: the connection's longest life.
    pub(crate) disconnect_after: Option<Duration>,
    /// `refreshAfterInSeconds` (kept; the policies are not refreshed).
    pub(crate) refresh_after: Option<Duration>,
}

/// Reads the function's stdout as AWS's response.
pub(crate) fn parse(authorizer: &str, output: &[u8]) -> Result<Authorization, AuthorizerError> {
    let invalid = |why: String| AuthorizerError::InvalidResponse {
        name: authorizer.to_owned(),
        why,
    };
    let value: Value = serde_json::from_slice(output).map_err(|e| {
        let text = String::from_utf8_lossy(output);
        invalid(format!(
            "it is not JSON ({e}): {:?}",
            super::truncate(text.trim(), 200)
        ))
    })?;
    let Value::Object(object) = value else {
        return Err(invalid("it is not a JSON object".into()));
    };
    let Some(is_authenticated) = object.get("isAuthenticated").and_then(Value::as_bool) else {
        return Err(invalid("isAuthenticated (a boolean) is missing".into()));
    };
    let principal_id = match object.get("principalId") {
        Some(Value::String(id)) => id.clone(),
        None | Some(Value::Null) if !is_authenticated => String::new(),
        None | Some(Value::Null) => return Err(invalid("principalId is missing".into())),
        Some(other) => return Err(invalid(format!("principalId is not a string: {other}"))),
    };
    if is_authenticated
        && (principal_id.is_empty()
            || principal_id.len() > 128
            || !principal_id.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(invalid(format!(
            "principalId {principal_id:?} must be 1 to 128 letters and digits"
        )));
    }
    let policy_documents = match object.get("policyDocuments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => policies(items).map_err(invalid)?,
        Some(other) => {
            return Err(invalid(format!(
                "policyDocuments is not a list: {}",
                super::truncate(&other.to_string(), 100)
            )));
        }
    };
    let disconnect_after = seconds(&object, "disconnectAfterInSeconds").map_err(invalid)?;
    let refresh_after = seconds(&object, "refreshAfterInSeconds").map_err(invalid)?;
    Ok(Authorization {
        authorizer: authorizer.to_owned(),
        is_authenticated,
        principal_id,
        policy_documents,
        disconnect_after,
        refresh_after,
    })
}

fn policies(items: &[Value]) -> Result<Vec<String>, String> {
    if items.len() > MAX_POLICIES {
        return Err(format!(
            "policyDocuments has {} documents; at most {MAX_POLICIES}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let text = match item {
                Value::String(text) => text.clone(),
                Value::Object(_) => item.to_string(),
                other => {
                    return Err(format!(
                        "policyDocuments[{i}] is neither a document nor a string: {other}"
                    ));
                }
            };
            PolicyDocument::parse(&text)
                .map_err(|e| format!("policyDocuments[{i}] is not a valid policy: {e}"))?;
            Ok(text)
        })
        .collect()
}

fn seconds(object: &serde_json::Map<String, Value>, key: &str) -> Result<Option<Duration>, String> {
    let Some(value) = object.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(secs) = value.as_u64().filter(|s| (1..=MAX_SECONDS).contains(s)) else {
        return Err(format!(
            "{key} must be a whole number of seconds, 300 to {MAX_SECONDS}: {value}"
        ));
    };
    if secs < AWS_MIN_SECONDS {
        tracing::warn!(
            "{key} = {secs}: AWS requires at least {AWS_MIN_SECONDS}; the emulator honours it"
        );
    }
    Ok(Some(Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

    fn parsed(text: &str) -> Result<Authorization, String> {
        parse("auth", text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn aws_example_response_is_read_with_objects_or_strings() {
        let object = format!(
            r#"{{"isAuthenticated":true,"principalId":"abc123","disconnectAfterInSeconds":86400,
                "refreshAfterInSeconds":300,"policyDocuments":[{ALLOW}]}}"#
        );
        let a = parsed(&object).unwrap();
        assert!(a.is_authenticated);
        assert_eq!(a.principal_id, "abc123");
        assert_eq!(a.disconnect_after, Some(Duration::from_secs(86400)));
        assert_eq!(a.refresh_after, Some(Duration::from_secs(300)));
        assert_eq!(a.policy_documents.len(), 1);
        let strings = serde_json::json!({
            "isAuthenticated": true, "principalId": "p", "policyDocuments": [ALLOW]
        });
        assert_eq!(
            parsed(&strings.to_string()).unwrap().policy_documents,
            [ALLOW]
        );
    }

    #[test]
    fn a_denial_needs_no_principal() {
        let a = parsed(r#"{"isAuthenticated":false}"#).unwrap();
        assert!(!a.is_authenticated);
    }

    #[test]
    fn garbage_and_wrong_shapes_are_invalid_responses_that_say_why() {
        for (text, why) in [
            ("hello", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"principalId":"p"}"#, "isAuthenticated"),
            (r#"{"isAuthenticated":true}"#, "principalId is missing"),
            (
                r#"{"isAuthenticated":true,"principalId":"a b"}"#,
                "letters and digits",
            ),
            (
                r#"{"isAuthenticated":true,"principalId":"p","policyDocuments":{}}"#,
                "not a list",
            ),
            (
                r#"{"isAuthenticated":true,"principalId":"p","policyDocuments":["{}"]}"#,
                "not a valid policy",
            ),
            (
                r#"{"isAuthenticated":true,"principalId":"p","disconnectAfterInSeconds":0}"#,
                "disconnectAfterInSeconds",
            ),
            (
                r#"{"isAuthenticated":true,"principalId":"p","refreshAfterInSeconds":90000}"#,
                "refreshAfterInSeconds",
            ),
        ] {
            let error = parsed(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
        let eleven = serde_json::json!({
            "isAuthenticated": true, "principalId": "p", "policyDocuments": vec![ALLOW; 11]
        });
        assert!(
            parsed(&eleven.to_string())
                .unwrap_err()
                .contains("at most 10")
        );
    }

    #[test]
    fn a_short_lifetime_is_honoured() {
        let a =
            parsed(r#"{"isAuthenticated":true,"principalId":"p","disconnectAfterInSeconds":2}"#)
                .unwrap();
        assert_eq!(a.disconnect_after, Some(Duration::from_secs(2)));
    }
}
