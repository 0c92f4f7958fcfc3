//! Custom authorizers: CreateAuthorizer, DescribeAuthorizer, ListAuthorizers,
//! UpdateAuthorizer, DeleteAuthorizer, SetDefaultAuthorizer,
//! DescribeDefaultAuthorizer, TestInvokeAuthorizer (botocore's `iot` model;
//! research wave2-protocols.md §2.5).
//!
//! `authorizerFunctionArn` names the authorizer's Lambda function on AWS; in
//! the emulator it is a local command, run by `sh -c` with AWS's Lambda input
//! event on stdin, answering AWS's response on stdout (§8 of the behaviour
//! document).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::{Control, ControlError, ErrorCode, lenient};
use crate::authorizer::{self, AuthRequest, AuthorizerError, HttpContext, MqttContext};
use crate::store::{AuthorizerRecord, StoreError, now_unix};

/// The longest authorizer name, and its characters (`[\w=,@-]+`).
const MAX_NAME_CHARS: usize = 128;

/// CreateAuthorizer's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAuthorizerRequest {
    /// The authorizer's name.
    pub authorizer_name: String,
    /// The command run as the authorizer's function (AWS: a Lambda ARN).
    pub authorizer_function_arn: String,
    /// The name of the token's parameter (username query, header or query).
    pub token_key_name: Option<String>,
    /// Key name → PEM public key (RSA, at least 2048 bits).
    pub token_signing_public_keys: Option<BTreeMap<String, String>>,
    /// `ACTIVE` (default) or `INACTIVE`.
    pub status: Option<String>,
    /// Accepted; tags are not emulated.
    pub tags: Option<serde_json::Value>,
    /// No token signature is checked (default `false`).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub signing_disabled: Option<bool>,
    /// Kept; HTTP caching is not emulated.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enable_caching_for_http: Option<bool>,
}

/// CreateAuthorizer's and UpdateAuthorizer's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerNameResponse {
    /// The name.
    pub authorizer_name: String,
    /// Its ARN.
    pub authorizer_arn: String,
}

/// A request naming one authorizer (Describe, Delete, SetDefault).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizerNameRequest {
    /// The authorizer's name.
    pub authorizer_name: String,
}

/// AWS's `authorizerDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerDescription {
    /// The name.
    pub authorizer_name: String,
    /// Its ARN.
    pub authorizer_arn: String,
    /// The command run as its function.
    pub authorizer_function_arn: String,
    /// The token's parameter name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_key_name: Option<String>,
    /// Key name → PEM.
    pub token_signing_public_keys: BTreeMap<String, String>,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Epoch seconds.
    pub creation_date: i64,
    /// Epoch seconds.
    pub last_modified_date: i64,
    /// No token signature is checked.
    pub signing_disabled: bool,
    /// Kept, not used.
    pub enable_caching_for_http: bool,
}

/// DescribeAuthorizer's (and DescribeDefaultAuthorizer's) response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeAuthorizerResponse {
    /// The authorizer.
    pub authorizer_description: AuthorizerDescription,
}

/// ListAuthorizers' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListAuthorizersRequest {
    /// Page size (1–250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub page_size: Option<i64>,
    /// Where the previous page ended.
    pub marker: Option<String>,
    /// Accepted; names are listed in ascending order.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub ascending_order: Option<bool>,
    /// Only authorizers with this status.
    pub status: Option<String>,
}

/// One entry of ListAuthorizers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerSummary {
    /// The name.
    pub authorizer_name: String,
    /// Its ARN.
    pub authorizer_arn: String,
}

/// ListAuthorizers' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAuthorizersResponse {
    /// The authorizers.
    pub authorizers: Vec<AuthorizerSummary>,
    /// The next page's marker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// UpdateAuthorizer's request: what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAuthorizerRequest {
    /// The authorizer's name.
    pub authorizer_name: String,
    /// A new command.
    pub authorizer_function_arn: Option<String>,
    /// A new token key name.
    pub token_key_name: Option<String>,
    /// New keys.
    pub token_signing_public_keys: Option<BTreeMap<String, String>>,
    /// A new status.
    pub status: Option<String>,
    /// A new caching flag.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enable_caching_for_http: Option<bool>,
}

/// SetDefaultAuthorizer's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetDefaultAuthorizerResponse {
    /// The name.
    pub authorizer_name: String,
    /// Its ARN.
    pub authorizer_arn: String,
}

/// A request without members (DescribeDefaultAuthorizer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoMembers {}

/// TestInvokeAuthorizer's `httpContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestHttpContext {
    /// The headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The query string.
    pub query_string: Option<String>,
}

/// TestInvokeAuthorizer's `mqttContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestMqttContext {
    /// The username.
    pub username: Option<String>,
    /// The password, base64.
    pub password: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
}

/// TestInvokeAuthorizer's `tlsContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestTlsContext {
    /// The SNI.
    pub server_name: Option<String>,
}

/// TestInvokeAuthorizer's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestInvokeAuthorizerRequest {
    /// The authorizer.
    pub authorizer_name: String,
    /// The token.
    pub token: Option<String>,
    /// Its signature, base64.
    pub token_signature: Option<String>,
    /// An HTTP context.
    pub http_context: Option<TestHttpContext>,
    /// An MQTT context.
    pub mqtt_context: Option<TestMqttContext>,
    /// A TLS context.
    pub tls_context: Option<TestTlsContext>,
}

/// TestInvokeAuthorizer's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestInvokeAuthorizerResponse {
    /// `isAuthenticated`.
    pub is_authenticated: bool,
    /// `principalId`.
    pub principal_id: String,
    /// The policy documents, as JSON strings.
    pub policy_documents: Vec<String>,
    /// `refreshAfterInSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_after_in_seconds: Option<u64>,
    /// `disconnectAfterInSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_after_in_seconds: Option<u64>,
}

fn check_name(name: &str) -> Result<(), ControlError> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_=,@-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ControlError::invalid(format!(
            "authorizerName {name:?} must be 1 to {MAX_NAME_CHARS} characters of [\\w=,@-]"
        )))
    }
}

fn check_status(status: &str) -> Result<(), ControlError> {
    if status == "ACTIVE" || status == "INACTIVE" {
        Ok(())
    } else {
        Err(ControlError::invalid(format!(
            "status {status:?} must be ACTIVE or INACTIVE"
        )))
    }
}

fn check_token_key_name(key: &str) -> Result<(), ControlError> {
    let valid = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(ControlError::invalid(format!(
            "tokenKeyName {key:?} must be 1 to 128 characters of [a-zA-Z0-9_-]"
        )))
    }
}

fn check_keys(keys: &BTreeMap<String, String>) -> Result<(), ControlError> {
    for (name, pem) in keys {
        if pem.len() > 5120 {
            return Err(ControlError::invalid(format!(
                "tokenSigningPublicKeys[{name}] is longer than 5120 characters"
            )));
        }
        authorizer::signature::parse_public_key(pem)
            .map_err(|e| ControlError::invalid(format!("tokenSigningPublicKeys[{name}]: {e}")))?;
    }
    Ok(())
}

impl Control {
    fn authorizer_arn(&self, name: &str) -> String {
        self.arn("authorizer", name)
    }

    fn require_authorizer(&self, name: &str) -> Result<AuthorizerRecord, ControlError> {
        self.store
            .authorizer(name)?
            .ok_or_else(|| StoreError::AuthorizerNotFound(name.to_owned()).into())
    }

    fn describe(&self, record: AuthorizerRecord) -> DescribeAuthorizerResponse {
        DescribeAuthorizerResponse {
            authorizer_description: AuthorizerDescription {
                authorizer_arn: self.authorizer_arn(&record.name),
                authorizer_name: record.name,
                authorizer_function_arn: record.function,
                token_key_name: record.token_key_name,
                token_signing_public_keys: record.token_signing_public_keys,
                status: record.status,
                creation_date: record.created_at,
                last_modified_date: record.last_modified_at,
                signing_disabled: record.signing_disabled,
                enable_caching_for_http: record.enable_caching_for_http,
            },
        }
    }

    /// CreateAuthorizer. With signing on (the default), `tokenKeyName` and
    /// at least one RSA public key are required.
    pub fn create_authorizer(
        &self,
        request: CreateAuthorizerRequest,
    ) -> Result<AuthorizerNameResponse, ControlError> {
        check_name(&request.authorizer_name)?;
        if request.authorizer_function_arn.trim().is_empty() {
            return Err(ControlError::invalid(
                "authorizerFunctionArn (the command the emulator runs) must not be empty",
            ));
        }
        let status = request.status.unwrap_or_else(|| "ACTIVE".to_owned());
        check_status(&status)?;
        if let Some(key) = &request.token_key_name {
            check_token_key_name(key)?;
        }
        let keys = request.token_signing_public_keys.unwrap_or_default();
        check_keys(&keys)?;
        let signing_disabled = request.signing_disabled.unwrap_or(false);
        if !signing_disabled && (request.token_key_name.is_none() || keys.is_empty()) {
            return Err(ControlError::invalid(
                "with signing enabled (signingDisabled false, the default), tokenKeyName and \
                 tokenSigningPublicKeys are required",
            ));
        }
        let now = now_unix();
        let record = AuthorizerRecord {
            name: request.authorizer_name,
            function: request.authorizer_function_arn,
            token_key_name: request.token_key_name,
            token_signing_public_keys: keys,
            status,
            signing_disabled,
            enable_caching_for_http: request.enable_caching_for_http.unwrap_or(false),
            is_default: false,
            created_at: now,
            last_modified_at: now,
        };
        self.store.add_authorizer(&record).map_err(|e| match e {
            StoreError::AuthorizerExists(name) => {
                let arn = self.authorizer_arn(&name);
                ControlError::from(StoreError::AuthorizerExists(name.clone()))
                    .with_resource(name, arn)
            }
            other => other.into(),
        })?;
        Ok(AuthorizerNameResponse {
            authorizer_arn: self.authorizer_arn(&record.name),
            authorizer_name: record.name,
        })
    }

    /// DescribeAuthorizer.
    pub fn describe_authorizer(
        &self,
        request: AuthorizerNameRequest,
    ) -> Result<DescribeAuthorizerResponse, ControlError> {
        Ok(self.describe(self.require_authorizer(&request.authorizer_name)?))
    }

    /// DescribeDefaultAuthorizer.
    pub fn describe_default_authorizer(
        &self,
        _request: NoMembers,
    ) -> Result<DescribeAuthorizerResponse, ControlError> {
        let record = self.store.default_authorizer()?.ok_or_else(|| {
            ControlError::not_found("no default authorizer is set (SetDefaultAuthorizer)")
        })?;
        Ok(self.describe(record))
    }

    /// ListAuthorizers.
    pub fn list_authorizers(
        &self,
        request: ListAuthorizersRequest,
    ) -> Result<ListAuthorizersResponse, ControlError> {
        if let Some(status) = &request.status {
            check_status(status)?;
        }
        let names: Vec<String> = self
            .store
            .list_authorizers()?
            .into_iter()
            .filter(|r| request.status.as_ref().is_none_or(|s| *s == r.status))
            .map(|r| r.name)
            .collect();
        let page = paginate(
            names,
            |n| n.as_str(),
            request.marker.as_deref(),
            request.page_size,
            250,
            250,
        )?;
        Ok(ListAuthorizersResponse {
            authorizers: page
                .items
                .into_iter()
                .map(|name| AuthorizerSummary {
                    authorizer_arn: self.authorizer_arn(&name),
                    authorizer_name: name,
                })
                .collect(),
            next_marker: page.next,
        })
    }

    /// UpdateAuthorizer (`signingDisabled` cannot change).
    pub fn update_authorizer(
        &self,
        request: UpdateAuthorizerRequest,
    ) -> Result<AuthorizerNameResponse, ControlError> {
        let mut record = self.require_authorizer(&request.authorizer_name)?;
        if let Some(function) = request.authorizer_function_arn {
            if function.trim().is_empty() {
                return Err(ControlError::invalid(
                    "authorizerFunctionArn must not be empty",
                ));
            }
            record.function = function;
        }
        if let Some(key) = request.token_key_name {
            check_token_key_name(&key)?;
            record.token_key_name = Some(key);
        }
        if let Some(keys) = request.token_signing_public_keys {
            check_keys(&keys)?;
            record.token_signing_public_keys = keys;
        }
        if let Some(status) = request.status {
            check_status(&status)?;
            record.status = status;
        }
        if let Some(caching) = request.enable_caching_for_http {
            record.enable_caching_for_http = caching;
        }
        record.last_modified_at = now_unix();
        self.store.update_authorizer(&record)?;
        Ok(AuthorizerNameResponse {
            authorizer_arn: self.authorizer_arn(&record.name),
            authorizer_name: record.name,
        })
    }

    /// DeleteAuthorizer.
    pub fn delete_authorizer(&self, request: AuthorizerNameRequest) -> Result<(), ControlError> {
        if !self.store.delete_authorizer(&request.authorizer_name)? {
            return Err(StoreError::AuthorizerNotFound(request.authorizer_name).into());
        }
        Ok(())
    }

    /// SetDefaultAuthorizer: the authorizer used when a request names none.
    pub fn set_default_authorizer(
        &self,
        request: AuthorizerNameRequest,
    ) -> Result<SetDefaultAuthorizerResponse, ControlError> {
        self.store
            .set_default_authorizer(&request.authorizer_name)?;
        Ok(SetDefaultAuthorizerResponse {
            authorizer_arn: self.authorizer_arn(&request.authorizer_name),
            authorizer_name: request.authorizer_name,
        })
    }

    /// TestInvokeAuthorizer: runs the authorizer as a connection would
    /// (signature check, then its function) and returns its answer.
    /// `InvalidResponseException` when the function's answer is not AWS's
    /// shape; a failed signature or function is `InvalidRequestException`.
    pub async fn test_invoke_authorizer(
        &self,
        request: TestInvokeAuthorizerRequest,
    ) -> Result<TestInvokeAuthorizerResponse, ControlError> {
        let mut explicit = vec![(
            authorizer::NAME_PARAMETER.to_owned(),
            request.authorizer_name.clone(),
        )];
        let record = self.require_authorizer(&request.authorizer_name)?;
        if let (Some(token), Some(key)) = (&request.token, &record.token_key_name) {
            explicit.push((key.clone(), token.clone()));
        }
        if let Some(signature) = request.token_signature {
            explicit.push((authorizer::SIGNATURE_PARAMETER.to_owned(), signature));
        }
        let mqtt = match request.mqtt_context {
            None => None,
            Some(mqtt) => Some(MqttContext {
                username: mqtt.username,
                password: match mqtt.password {
                    None => None,
                    Some(text) => Some(BASE64.decode(text).map_err(|e| {
                        ControlError::invalid(format!("mqttContext.password is not base64: {e}"))
                    })?),
                },
                client_id: mqtt.client_id,
            }),
        };
        let auth_request = AuthRequest {
            server_name: request.tls_context.and_then(|t| t.server_name),
            http: request.http_context.map(|h| HttpContext {
                headers: h.headers,
                query_string: h.query_string.unwrap_or_default(),
            }),
            mqtt,
            explicit,
        };
        let store = self.store.clone();
        let outcome = authorizer::invoke(&store, &auth_request).await;
        match outcome {
            Ok(a) => Ok(TestInvokeAuthorizerResponse {
                is_authenticated: a.is_authenticated,
                principal_id: a.principal_id,
                policy_documents: a.policy_documents,
                refresh_after_in_seconds: a.refresh_after.map(|d| d.as_secs()),
                disconnect_after_in_seconds: a.disconnect_after.map(|d| d.as_secs()),
            }),
            Err(AuthorizerError::InvalidResponse { name, why }) => Err(ControlError::new(
                ErrorCode::InvalidResponse,
                format!("the function of authorizer {name} answered an invalid response: {why}"),
            )),
            Err(AuthorizerError::Store(e)) => Err(e.into()),
            Err(other) => Err(ControlError::invalid(other.to_string())),
        }
    }
}
