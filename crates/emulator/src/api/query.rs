//! The query string as the handler and the SigV4 verifier see it.

use percent_encoding::percent_decode_str;

use super::error::AwsError;

/// Splits a raw query (`a=1&b&c=%2F`) into percent-decoded `(key, value)`
/// pairs in received order, duplicates kept; a key without `=` has an empty
/// value and empty pieces (`&&`) are skipped. `+` is a literal plus, not a
/// space: AWS clients encode a space as `%20` (research wave2-protocols.md §1.2).
pub(crate) fn parse_query(raw: &str) -> Result<Vec<(String, String)>, AwsError> {
    let mut pairs = Vec::new();
    for piece in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        pairs.push((decode(key)?, decode(value)?));
    }
    Ok(pairs)
}

fn decode(text: &str) -> Result<String, AwsError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            AwsError::invalid_request(format!(
                "The query parameter {text:?} is not valid UTF-8 once percent-decoded"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        parse_query(raw).unwrap()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pairs_are_decoded_in_order_with_duplicates_and_bare_keys() {
        assert_eq!(
            pairs("b=2&a=1&a=0&setAsActive&&x=%2Fy%24&p=a+b&e="),
            owned(&[
                ("b", "2"),
                ("a", "1"),
                ("a", "0"),
                ("setAsActive", ""),
                ("x", "/y$"),
                ("p", "a+b"),
                ("e", ""),
            ])
        );
        assert_eq!(pairs(""), owned(&[]));
        assert_eq!(pairs("k=v=w"), owned(&[("k", "v=w")]));
    }

    #[test]
    fn a_value_that_is_not_utf8_is_a_bad_request() {
        let error = parse_query("a=%FF").unwrap_err();
        assert_eq!(error.code(), "InvalidRequestException");
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    }
}
