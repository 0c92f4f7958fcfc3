//! Greengrass core devices, client-device association, connectivity, CAs
//! and discovery's decisions.

use iotcore_model::greengrass::ConnectivityInfo;

use super::*;
use crate::pki::KeyAlgorithm;

fn setup() -> (tempfile::TempDir, Control) {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::open(dir.path(), ArnScope::default()).unwrap();
    (dir, control)
}

fn thing(control: &Control, name: &str) {
    control
        .create_thing(CreateThingRequest::named(name))
        .unwrap();
}

fn address(host: &str, port: u16) -> ConnectivityInfo {
    ConnectivityInfo {
        id: format!("{host}:{port}"),
        host_address: host.into(),
        port,
        metadata: String::new(),
    }
}

fn connectivity(control: &Control, core: &str, addresses: Vec<ConnectivityInfo>) -> String {
    control
        .update_connectivity_info(UpdateConnectivityInfoRequest {
            thing_name: core.into(),
            connectivity_info: addresses,
        })
        .unwrap()
        .version
}

/// A thing with an ACTIVE certificate whose one policy is `document`.
fn device(control: &Control, name: &str, document: &str) -> String {
    let created = control
        .create_thing_with_certificate(
            name,
            &ThingOptions::default()
                .with_key(KeyAlgorithm::EcdsaP256)
                .with_policy(ThingPolicy::None),
        )
        .unwrap();
    let policy = format!("{name}-discover");
    control
        .create_policy(CreatePolicyRequest {
            policy_name: policy.clone(),
            policy_document: document.into(),
            tags: None,
        })
        .unwrap();
    let id = created.credentials.certificate_id;
    control
        .attach_policy(PolicyTargetRequest {
            policy_name: policy,
            target: control.arn("cert", &id),
        })
        .unwrap();
    id
}

fn allow_discover(resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"greengrass:Discover","Resource":"{resource}"}}]}}"#
    )
}

#[test]
fn association_needs_a_registered_core_and_reports_bad_entries() {
    let (_dir, control) = setup();
    for name in ["core", "dev1", "dev2"] {
        thing(&control, name);
    }
    let err = control
        .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
            "core",
            ["dev1"],
        ))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceNotFound);
    assert!(err.message().contains("greengrass core create"), "{err}");
    assert_eq!(
        (err.resource_id(), err.resource_type()),
        (Some("core"), Some("coreDevice"))
    );
    let err = control.register_core_device("ghost").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceNotFound);

    assert!(control.register_core_device("core").unwrap());
    let response = control
        .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
            "core",
            ["dev1", "ghost", "bad name", "dev2"],
        ))
        .unwrap();
    let errors: Vec<(&str, &str)> = response
        .error_entries
        .iter()
        .map(|e| (e.thing_name.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("ghost", "ResourceNotFoundException"),
            ("bad name", "ValidationException")
        ]
    );
    let listed = control
        .list_client_devices_associated_with_core_device(ListClientDevicesRequest {
            core_device_thing_name: "core".into(),
            ..ListClientDevicesRequest::default()
        })
        .unwrap();
    let names: Vec<&str> = listed
        .associated_client_devices
        .iter()
        .map(|c| c.thing_name.as_str())
        .collect();
    assert_eq!(names, ["dev1", "dev2"]);

    let response = control
        .batch_disassociate_client_device_from_core_device(BatchClientDevicesRequest::new(
            "core",
            ["dev1", "never-associated"],
        ))
        .unwrap();
    assert!(response.error_entries.is_empty(), "{response:?}");
    assert_eq!(
        control.list_core_devices().unwrap()[0].client_devices,
        ["dev2"]
    );
}

#[test]
fn batches_hold_one_to_a_hundred_entries() {
    let (_dir, control) = setup();
    thing(&control, "core");
    control.register_core_device("core").unwrap();
    for n in [0, MAX_BATCH_ENTRIES + 1] {
        let names: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        let err = control
            .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
                "core", names,
            ))
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{n} entries");
    }
}

#[test]
fn client_devices_are_listed_in_pages() {
    let (_dir, control) = setup();
    thing(&control, "core");
    control.register_core_device("core").unwrap();
    let names: Vec<String> = (0..5).map(|i| format!("dev{i}")).collect();
    for name in &names {
        thing(&control, name);
    }
    control
        .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
            "core",
            names.clone(),
        ))
        .unwrap();
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = control
            .list_client_devices_associated_with_core_device(ListClientDevicesRequest {
                core_device_thing_name: "core".into(),
                max_results: Some(2),
                next_token: token,
            })
            .unwrap();
        assert!(page.associated_client_devices.len() <= 2);
        seen.extend(
            page.associated_client_devices
                .into_iter()
                .map(|c| c.thing_name),
        );
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, names);
    let err = control
        .list_client_devices_associated_with_core_device(ListClientDevicesRequest {
            core_device_thing_name: "core".into(),
            max_results: Some(101),
            next_token: None,
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    let err = control
        .list_client_devices_associated_with_core_device(ListClientDevicesRequest {
            core_device_thing_name: "dev0".into(),
            ..ListClientDevicesRequest::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceNotFound);
}

#[test]
fn connectivity_is_versioned_ordered_and_validated() {
    let (_dir, control) = setup();
    thing(&control, "core");
    let err = control
        .update_connectivity_info(UpdateConnectivityInfoRequest {
            thing_name: "ghost".into(),
            connectivity_info: vec![address("h", 1)],
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceNotFound);
    let err = control
        .update_connectivity_info(UpdateConnectivityInfoRequest {
            thing_name: "core".into(),
            connectivity_info: vec![address("", 1)],
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    assert!(
        control
            .get_connectivity_info(GetConnectivityInfoRequest {
                thing_name: "core".into()
            })
            .unwrap()
            .connectivity_info
            .is_empty()
    );

    assert_eq!(
        connectivity(&control, "core", vec![address("10.0.0.1", 8883)]),
        "1"
    );
    let addresses = vec![address("core.local", 8883), address("127.0.0.1", 18883)];
    assert_eq!(connectivity(&control, "core", addresses.clone()), "2");
    let got = control
        .get_connectivity_info(GetConnectivityInfoRequest {
            thing_name: "core".into(),
        })
        .unwrap();
    assert_eq!(got.connectivity_info, addresses);
    assert_eq!(
        control.list_core_devices().unwrap()[0].core_device_thing_name,
        "core",
        "reporting connectivity makes the thing a core device"
    );
}

#[test]
fn certificate_authorities_must_be_pem_certificates_of_a_core() {
    let (_dir, control) = setup();
    thing(&control, "core");
    let ca = control.pki().ca_pem().to_owned();
    let err = control
        .put_certificate_authorities("core", std::slice::from_ref(&ca))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceNotFound);
    control.register_core_device("core").unwrap();
    for bad in ["not a pem".to_owned(), format!("{ca}{ca}")] {
        let err = control
            .put_certificate_authorities("core", &[bad])
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{err}");
    }
    control
        .put_certificate_authorities("core", std::slice::from_ref(&ca))
        .unwrap();
    assert_eq!(
        control.list_core_devices().unwrap()[0].certificate_authorities,
        1
    );
}

#[test]
fn discovery_answers_each_associated_core_with_connectivity() {
    let (_dir, control) = setup();
    let certificate = device(&control, "dev1", &allow_discover("*"));
    for core in ["core-b", "core-a", "core-quiet"] {
        thing(&control, core);
        control.register_core_device(core).unwrap();
        control
            .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
                core,
                ["dev1"],
            ))
            .unwrap();
    }
    assert_eq!(
        control.discover(&certificate, "dev1", None).unwrap(),
        Discovery::NotFound,
        "no core has connectivity yet"
    );
    connectivity(
        &control,
        "core-b",
        vec![address("10.0.0.2", 8883), address("127.0.0.1", 8883)],
    );
    connectivity(&control, "core-a", vec![address("10.0.0.1", 8883)]);
    let ca = control.pki().ca_pem().to_owned();
    control
        .put_certificate_authorities("core-a", std::slice::from_ref(&ca))
        .unwrap();

    let Discovery::Found(response) = control.discover(&certificate, "dev1", None).unwrap() else {
        panic!("discovery found nothing")
    };
    let ids: Vec<&str> = response.groups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "greengrassV2-coreDevice-core-a",
            "greengrassV2-coreDevice-core-b"
        ]
    );
    assert_eq!(response.groups[0].cas, [ca]);
    assert_eq!(
        response.groups[0].cores[0].thing_arn,
        control.arn("thing", "core-a")
    );
    let hosts: Vec<&str> = response
        .candidates()
        .map(|(_, _, a)| a.host_address.as_str())
        .collect();
    assert_eq!(hosts, ["10.0.0.1", "10.0.0.2", "127.0.0.1"]);
}

#[test]
fn discovery_refuses_in_aws_order() {
    let (_dir, control) = setup();
    thing(&control, "core");
    connectivity(&control, "core", vec![address("127.0.0.1", 8883)]);
    let allowed = device(
        &control,
        "dev1",
        &allow_discover(&control.arn("thing", "dev1")),
    );
    let variables = device(
        &control,
        "dev2",
        &allow_discover(&control.arn("thing", "${iot:Connection.Thing.ThingName}")),
    );
    let other = device(
        &control,
        "dev3",
        &allow_discover(&control.arn("thing", "dev1")),
    );
    control
        .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
            "core",
            ["dev1", "dev2", "dev3"],
        ))
        .unwrap();

    assert!(matches!(
        control.discover(&allowed, "dev1", None).unwrap(),
        Discovery::Found(_)
    ));
    assert!(
        matches!(
            control.discover(&allowed, "dev2", None).unwrap(),
            Discovery::Refused(why) if why.contains("not attached")
        ),
        "a certificate discovers only its own things"
    );
    assert!(
        matches!(
            control.discover(&variables, "dev2", None).unwrap(),
            Discovery::Forbidden(_)
        ),
        "thing policy variables have no value in discovery"
    );
    assert!(matches!(
        control.discover(&other, "dev3", None).unwrap(),
        Discovery::Forbidden(why) if why.contains("greengrass:Discover")
    ));
    control
        .batch_disassociate_client_device_from_core_device(BatchClientDevicesRequest::new(
            "core",
            ["dev1"],
        ))
        .unwrap();
    assert_eq!(
        control.discover(&allowed, "dev1", None).unwrap(),
        Discovery::NotFound
    );
    control
        .update_certificate(UpdateCertificateRequest {
            certificate_id: allowed.clone(),
            new_status: "INACTIVE".into(),
        })
        .unwrap();
    assert!(matches!(
        control.discover(&allowed, "dev1", None).unwrap(),
        Discovery::Refused(why) if why.contains("INACTIVE")
    ));
    assert!(matches!(
        control.discover(&"0".repeat(64), "dev1", None).unwrap(),
        Discovery::Refused(_)
    ));
}
