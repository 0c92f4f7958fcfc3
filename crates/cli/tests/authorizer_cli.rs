//! `iotcore authorizer …` as a user runs it: create (with the default
//! marker), list, test (TestInvokeAuthorizer running the command with AWS's
//! Lambda event), delete, and the errors a user meets.

mod common;

use serde_json::Value;

use common::{fails, ok};

/// An authorizer command that allows the token `letmein` (read from AWS's
/// event on stdin) and denies anything else.
const COMMAND: &str = r#"if grep -q '"token": *"letmein"'; then echo '{"isAuthenticated":true,"principalId":"alice","disconnectAfterInSeconds":3600,"refreshAfterInSeconds":600,"policyDocuments":["{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}"]}'; else echo '{"isAuthenticated":false}'; fi"#;

#[test]
fn an_authorizer_is_created_listed_tested_and_deleted() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let created = ok(
        dir,
        &[
            "authorizer",
            "create",
            "tokens",
            "--command",
            COMMAND,
            "--token-key-name",
            "token",
            "--default",
        ],
    );
    assert!(created.contains("authorizer tokens created"), "{created}");
    assert!(created.contains(":authorizer/tokens"), "{created}");
    assert!(created.contains("default authorizer"), "{created}");

    let listed = ok(dir, &["authorizer", "list"]);
    let row = listed
        .lines()
        .find(|line| line.starts_with("tokens"))
        .unwrap_or_else(|| panic!("tokens is listed: {listed}"));
    assert!(row.starts_with("tokens (default)\tACTIVE\toff\t"), "{row}");

    let allowed: Value = serde_json::from_str(&ok(
        dir,
        &["authorizer", "test", "tokens", "--token", "letmein"],
    ))
    .expect("TestInvokeAuthorizer's JSON");
    assert_eq!(allowed["isAuthenticated"], true, "{allowed}");
    assert_eq!(allowed["principalId"], "alice", "{allowed}");
    assert_eq!(allowed["disconnectAfterInSeconds"], 3600, "{allowed}");
    assert_eq!(allowed["policyDocuments"].as_array().map(Vec::len), Some(1));

    let denied: Value = serde_json::from_str(&ok(
        dir,
        &["authorizer", "test", "tokens", "--token", "wrong"],
    ))
    .expect("TestInvokeAuthorizer's JSON");
    assert_eq!(denied["isAuthenticated"], false, "{denied}");

    let deleted = ok(dir, &["authorizer", "delete", "tokens"]);
    assert!(deleted.contains("authorizer tokens deleted"), "{deleted}");
    assert!(!ok(dir, &["authorizer", "list"]).contains("tokens"));
}

#[test]
fn a_user_mistake_is_an_error_that_says_what() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let missing = fails(dir, &["authorizer", "test", "nobody", "--token", "x"]);
    assert!(missing.contains("nobody"), "{missing}");
    let no_key_file = fails(
        dir,
        &[
            "authorizer",
            "create",
            "signed",
            "--command",
            "true",
            "--token-key-name",
            "token",
            "--public-key",
            "/nonexistent/key.pem",
        ],
    );
    assert!(no_key_file.contains("key.pem"), "{no_key_file}");
    ok(dir, &["authorizer", "create", "twice", "--command", "true"]);
    let again = fails(dir, &["authorizer", "create", "twice", "--command", "true"]);
    assert!(again.to_lowercase().contains("exists"), "{again}");
}
