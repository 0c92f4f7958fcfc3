//! AWS's error wire format for the rest-json services (`iot`, `iot-data`,
//! `iot-jobs-data`, `greengrassv2`).
//!
//! An error is an HTTP status, the header `x-amzn-ErrorType: <code>` and a JSON
//! body `{"message": "...", "__type": "<code>", ...extra members}`. Every AWS
//! client reads the code from the header first (botocore's `RestJSONParser`,
//! smithy-rs `json_errors.rs`, the JS v3 and Go v2 SDKs), and botocore falls back
//! to the body's `__type`; the message comes from the body's `message`. Extra
//! members (e.g. `resourceId`, `resourceArn` of `ResourceAlreadyExistsException`)
//! sit beside `message` in the body. Research: wave2-protocols.md §5.2.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};

use super::ApiResponse;

/// The header every AWS rest-json client reads the error code from.
pub(crate) const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// An error as AWS answers it: status, code, message and extra body members.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct AwsError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    extra: Map<String, Value>,
}

impl AwsError {
    /// An error with AWS's `code` (e.g. `ResourceNotFoundException`), answered
    /// with `status`.
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds a member to the JSON body beside `message` (`message` and `__type`
    /// cannot be overridden this way).
    pub(crate) fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// AWS's error code, e.g. `InvalidSignatureException`.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    #[cfg(test)]
    /// The extra body members.
    pub(crate) fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// The HTTP response: status, `x-amzn-ErrorType`, `content-type:
    /// application/json` and the JSON body. (`x-amzn-RequestId` is added by the
    /// server to every response.)
    pub(crate) fn into_response(self) -> ApiResponse {
        let mut body = self.extra;
        body.insert("message".to_owned(), Value::String(self.message));
        body.insert("__type".to_owned(), Value::String(self.code.to_string()));
        let body = Bytes::from(Value::Object(body).to_string());
        let mut response = http::Response::new(Full::new(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // An error code is ASCII by construction; a code that is not a valid
        // header value is still in the body's `__type`.
        if let Ok(code) = HeaderValue::from_str(&self.code) {
            headers.insert(ERROR_TYPE_HEADER, code);
        }
        response
    }

    /// 403 `MissingAuthenticationTokenException`: no `Authorization` header, no
    /// presigned query and no client certificate (what API Gateway-fronted AWS
    /// services answer).
    pub(crate) fn missing_authentication_token() -> AwsError {
        AwsError::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }

    /// 403 `IncompleteSignatureException`: the `Authorization` header or the
    /// presigned query is malformed or lacks a part.
    pub(crate) fn incomplete_signature(message: impl Into<String>) -> AwsError {
        AwsError::new(
            StatusCode::FORBIDDEN,
            "IncompleteSignatureException",
            message,
        )
    }

    /// 403 `InvalidSignatureException` with AWS's message for a signature that
    /// does not match.
    pub(crate) fn signature_mismatch() -> AwsError {
        AwsError::invalid_signature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. \
             Consult the service documentation for details.",
        )
    }

    /// 403 `InvalidSignatureException` with another message (expired
    /// signature, wrong credential scope).
    pub(crate) fn invalid_signature(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::FORBIDDEN, "InvalidSignatureException", message)
    }

    /// 403 `UnrecognizedClientException`: unknown access key id, or a session
    /// token that is missing or does not match.
    pub(crate) fn unrecognized_client() -> AwsError {
        AwsError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    /// 403 `ExpiredTokenException`: the credentials are past their expiry.
    pub(crate) fn expired_token() -> AwsError {
        AwsError::new(
            StatusCode::FORBIDDEN,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
    }

    /// 413 `RequestEntityTooLargeException`: the body is over `limit` bytes.
    pub(crate) fn request_entity_too_large(limit: usize) -> AwsError {
        AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("The request body is larger than this endpoint's limit of {limit} bytes"),
        )
    }

    /// 400 `InvalidRequestException`: the request is malformed.
    pub(crate) fn invalid_request(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    /// 404 `UnknownOperationException`: no operation at this path.
    pub(crate) fn unknown_operation(method: &Method, raw_path: &str) -> AwsError {
        AwsError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("No operation of this emulator matches {method} {raw_path}"),
        )
    }

    /// 405 `MethodNotAllowedException`: the path exists, not with this method.
    pub(crate) fn method_not_allowed(method: &Method, raw_path: &str, allowed: &[Method]) -> Self {
        let allowed: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        AwsError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            format!(
                "{method} is not allowed on {raw_path}; allowed: {}",
                allowed.join(", ")
            ),
        )
    }

    /// 500 `InternalFailureException`: the emulator failed; the message says
    /// what to look at.
    pub(crate) fn internal_failure(message: impl Into<String>) -> AwsError {
        AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            message,
        )
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body_json(response: ApiResponse) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn an_error_carries_its_code_in_the_header_and_message_type_and_extra_in_the_body() {
        let response = AwsError::new(
            StatusCode::CONFLICT,
            "ResourceAlreadyExistsException",
            "Thing t already exists",
        )
        .with_field("resourceId", "t")
        .with_field("message", "cannot override")
        .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers()[ERROR_TYPE_HEADER],
            "ResourceAlreadyExistsException"
        );
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "message": "Thing t already exists",
                "__type": "ResourceAlreadyExistsException",
                "resourceId": "t",
            })
        );
    }

    #[test]
    fn extra_members_are_kept_apart_from_the_message() {
        let error = AwsError::internal_failure("boom").with_field("resourceArn", "arn:x");
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code(), "InternalFailureException");
        assert_eq!(error.message(), "boom");
        assert_eq!(error.extra()["resourceArn"], "arn:x");
    }

    #[test]
    fn each_constructor_has_aws_status_and_code() {
        let cases = [
            (
                AwsError::missing_authentication_token(),
                403,
                "MissingAuthenticationTokenException",
            ),
            (
                AwsError::incomplete_signature("m"),
                403,
                "IncompleteSignatureException",
            ),
            (
                AwsError::signature_mismatch(),
                403,
                "InvalidSignatureException",
            ),
            (
                AwsError::invalid_signature("m"),
                403,
                "InvalidSignatureException",
            ),
            (
                AwsError::unrecognized_client(),
                403,
                "UnrecognizedClientException",
            ),
            (AwsError::expired_token(), 403, "ExpiredTokenException"),
            (
                AwsError::request_entity_too_large(8),
                413,
                "RequestEntityTooLargeException",
            ),
            (
                AwsError::invalid_request("m"),
                400,
                "InvalidRequestException",
            ),
            (
                AwsError::unknown_operation(&Method::GET, "/x"),
                404,
                "UnknownOperationException",
            ),
            (
                AwsError::method_not_allowed(&Method::PUT, "/x", &[Method::GET]),
                405,
                "MethodNotAllowedException",
            ),
            (
                AwsError::internal_failure("m"),
                500,
                "InternalFailureException",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status().as_u16(), error.code()), (status, code));
        }
    }

    #[test]
    fn display_is_code_then_message() {
        assert_eq!(
            AwsError::unrecognized_client().to_string(),
            "UnrecognizedClientException: The security token included in the request is invalid."
        );
    }

    #[tokio::test]
    async fn missing_authentication_token_is_api_gateways_answer() {
        let response = AwsError::missing_authentication_token().into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[ERROR_TYPE_HEADER],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            body_json(response).await["message"],
            "Missing Authentication Token"
        );
    }
}
