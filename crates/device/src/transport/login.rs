//! The CONNECT user name: the application's, a custom authorizer's query,
//! and the SDK metrics AWS's SDKs add (`?SDK=…&Version=…`).
//!
//! AWS IoT Core parses the user name as `name?key=value&key=value`: every
//! pair goes into the one query (a second `?` broke custom authorizers when
//! AWS's Java SDK appended its metrics after an authorizer's query,
//! aws-iot-device-sdk-java-v2#154).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The SDK name in the metrics.
pub(crate) const SDK_NAME: &str = "IoTCoreRust";

/// Everything but RFC 3986's unreserved characters is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The metrics pairs.
pub(crate) fn metrics() -> [(&'static str, &'static str); 2] {
    [("SDK", SDK_NAME), ("Version", env!("CARGO_PKG_VERSION"))]
}

/// `base` with `pairs` added to its query (started with `?`, or continued
/// with `&` when `base` already has one). Keys and values are
/// percent-encoded unless they already are (they hold a `%`), as AWS's
/// Python SDK does with an authorizer's signature. `None` when there is
/// neither a base nor a pair.
pub(crate) fn username_with(base: Option<&str>, pairs: &[(&str, &str)]) -> Option<String> {
    if pairs.is_empty() {
        return base.map(str::to_owned);
    }
    let mut username = base.unwrap_or("").to_owned();
    let mut separator = if username.contains('?') { '&' } else { '?' };
    for (key, value) in pairs {
        username.push(separator);
        username.push_str(&encode(key));
        username.push('=');
        username.push_str(&encode(value));
        separator = '&';
    }
    Some(username)
}

fn encode(s: &str) -> String {
    if s.contains('%') {
        s.to_owned()
    } else {
        utf8_percent_encode(s, QUERY_VALUE).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_start_a_query_or_continue_an_existing_one() {
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            username_with(Some("device"), &metrics()).unwrap(),
            format!("device?SDK=IoTCoreRust&Version={version}")
        );
        assert_eq!(
            username_with(Some("device?x-amz-customauthorizer-name=auth"), &metrics()).unwrap(),
            format!("device?x-amz-customauthorizer-name=auth&SDK=IoTCoreRust&Version={version}")
        );
        assert_eq!(
            username_with(None, &metrics()).unwrap(),
            format!("?SDK=IoTCoreRust&Version={version}")
        );
        assert_eq!(username_with(Some("plain"), &[]).as_deref(), Some("plain"));
        assert_eq!(username_with(None, &[]), None);
    }

    #[test]
    fn a_signature_is_percent_encoded_once() {
        let raw = username_with(None, &[("x-amz-customauthorizer-signature", "ab+c/d==")]);
        assert_eq!(
            raw.as_deref(),
            Some("?x-amz-customauthorizer-signature=ab%2Bc%2Fd%3D%3D")
        );
        let encoded = username_with(None, &[("x-amz-customauthorizer-signature", "ab%2Bc")]);
        assert_eq!(
            encoded.as_deref(),
            Some("?x-amz-customauthorizer-signature=ab%2Bc")
        );
    }
}
