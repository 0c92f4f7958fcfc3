//! `iotcore greengrass …` and `iotcore discover` as a user runs them: a core
//! device, its connectivity, client devices associated (with a note when a
//! device's policy cannot discover), the listing, and discovery against a
//! running `iotcore emulator` with the device's files.

mod common;

use serde_json::Value;

use common::{Emulator, fails, ok};

#[test]
fn a_core_is_created_given_addresses_and_clients_and_discovered() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let created = ok(dir, &["greengrass", "core", "create", "core1"]);
    assert!(created.contains("core1 (arn:aws:iot:"), "{created}");
    assert!(
        created.contains("is now a Greengrass core device"),
        "{created}"
    );
    let again = ok(dir, &["greengrass", "core", "create", "core1"]);
    assert!(again.contains("was already"), "{again}");

    let set = ok(
        dir,
        &[
            "greengrass",
            "connectivity",
            "set",
            "core1",
            "127.0.0.1:18883",
            "[::1]:8883",
        ],
    );
    assert!(set.contains("(version 1)"), "{set}");
    let bad = fails(
        dir,
        &["greengrass", "connectivity", "set", "core1", "core.local"],
    );
    assert!(bad.contains("HOST:PORT"), "{bad}");

    let policy = dir.join("discover.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"greengrass:Discover","Resource":"arn:aws:iot:*:*:thing/dev1"}]}"#,
    )
    .unwrap();
    ok(
        dir,
        &["policy", "create", "gg-discover", policy.to_str().unwrap()],
    );
    let files = dir.join("files");
    let files_arg = files.to_str().unwrap();
    ok(
        dir,
        &[
            "thing",
            "create",
            "dev1",
            "--out",
            files_arg,
            "--policy",
            "gg-discover",
        ],
    );
    ok(dir, &["thing", "create", "dev2", "--out", files_arg]);

    let associated = ok(
        dir,
        &[
            "greengrass",
            "associate",
            "core1",
            "--thing",
            "dev1",
            "--thing",
            "dev2",
        ],
    );
    assert!(
        associated.contains("dev1 associated with core device core1"),
        "{associated}"
    );
    assert!(
        associated.contains("note: no certificate of dev2 may discover"),
        "dev2's own policy does not allow greengrass:Discover: {associated}"
    );
    assert!(!associated.contains("of dev1 may"), "{associated}");
    let refused = fails(
        dir,
        &["greengrass", "associate", "core1", "--thing", "ghost"],
    );
    assert!(
        refused.contains("ghost (ResourceNotFoundException"),
        "{refused}"
    );

    let listed = ok(dir, &["greengrass", "list"]);
    assert!(
        listed.contains("connectivity: 127.0.0.1:18883, [::1]:8883"),
        "{listed}"
    );
    assert!(listed.contains("client devices: dev1, dev2"), "{listed}");

    let emulator = Emulator::start_with(dir, &["--no-api"]);
    let port = emulator.port_arg();
    let device = |name: &str| {
        [
            "discover".to_owned(),
            "--thing".to_owned(),
            name.to_owned(),
            "--cert".to_owned(),
            files
                .join(format!("{name}.cert.pem"))
                .to_string_lossy()
                .into_owned(),
            "--key".to_owned(),
            files
                .join(format!("{name}.private.key"))
                .to_string_lossy()
                .into_owned(),
            "--port".to_owned(),
            port.clone(),
            // No core runs at these addresses: discovery only.
            "--no-connect".to_owned(),
        ]
    };
    let args = device("dev1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let discovered: Value = serde_json::from_str(&ok(dir, &args)).expect("AWS's JSON");
    let group = &discovered["GGGroups"][0];
    assert_eq!(
        group["GGGroupId"], "greengrassV2-coreDevice-core1",
        "{discovered}"
    );
    assert_eq!(
        group["Cores"][0]["Connectivity"][0]["HostAddress"],
        "127.0.0.1"
    );
    assert_eq!(group["Cores"][0]["Connectivity"][1]["PortNumber"], 8883);

    let args = device("dev2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let forbidden = fails(dir, &args);
    assert!(forbidden.contains("HTTP 403"), "{forbidden}");
    assert!(forbidden.contains("greengrass:Discover"), "{forbidden}");

    ok(
        dir,
        &["greengrass", "disassociate", "core1", "--thing", "dev1"],
    );
    let args = device("dev1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let not_found = fails(dir, &args);
    assert!(not_found.contains("HTTP 404"), "{not_found}");
    assert!(not_found.contains("associate the thing"), "{not_found}");
}
