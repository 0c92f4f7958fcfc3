//! `iotcore jobs …` as a user runs it: create, list, describe, executions,
//! cancel and delete, as tables and as AWS's JSON, and the errors a user
//! meets.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{fails, ok};

fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(data, args)).expect("JSON output")
}

/// A data directory with things dev1 and dev2, dev2 in group lamps, and a
/// firmware document.
fn setup() -> (tempfile::TempDir, String) {
    let data = tempfile::tempdir().unwrap();
    for thing in ["dev1", "dev2"] {
        let out = data.path().join(thing);
        ok(
            data.path(),
            &["thing", "create", thing, "--out", out.to_str().unwrap()],
        );
    }
    let control =
        iotcore_emulator::control::Control::open(data.path(), Default::default()).unwrap();
    control
        .create_thing_group(iotcore_emulator::control::CreateThingGroupRequest {
            thing_group_name: "lamps".into(),
            ..Default::default()
        })
        .unwrap();
    control
        .add_thing_to_thing_group(iotcore_emulator::control::ThingGroupMembershipRequest {
            thing_group_name: Some("lamps".into()),
            thing_name: Some("dev2".into()),
            ..Default::default()
        })
        .unwrap();
    let document = data.path().join("firmware.json");
    std::fs::write(&document, r#"{"operation":"firmware","version":"2.1"}"#).unwrap();
    let document = document.to_str().unwrap().to_owned();
    (data, document)
}

#[test]
fn a_job_created_for_a_thing_and_a_group_queues_an_execution_for_each() {
    let (data, document) = setup();
    let d = data.path();
    let created = ok(
        d,
        &[
            "jobs",
            "create",
            "fw-21",
            "--targets",
            "thing/dev1,group/lamps",
            "--document",
            &document,
            "--timeout",
            "30m",
            "--max-per-minute",
            "10",
            "--description",
            "firmware 2.1",
        ],
    );
    assert!(created.contains("job fw-21 created"), "{created}");
    assert!(created.contains("dev1\tQUEUED"), "{created}");
    assert!(created.contains("dev2\tQUEUED"), "{created}");

    let listed = ok(d, &["jobs", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("fw-21\tIN_PROGRESS\tSNAPSHOT")),
        "{listed}"
    );

    let described = json(d, &["jobs", "describe", "fw-21", "--json"]);
    let job = &described["job"];
    assert_eq!(job["jobId"], "fw-21");
    assert_eq!(job["description"], "firmware 2.1");
    assert_eq!(job["timeoutConfig"]["inProgressTimeoutInMinutes"], 30);
    assert_eq!(job["jobExecutionsRolloutConfig"]["maximumPerMinute"], 10);
    assert_eq!(job["jobProcessDetails"]["numberOfQueuedThings"], 2);
    let table = ok(d, &["jobs", "describe", "fw-21"]);
    assert!(table.contains("status:            IN_PROGRESS"), "{table}");
    assert!(table.contains("Queued       2"), "{table}");

    let for_thing = json(d, &["jobs", "executions", "--thing", "dev2", "--json"]);
    let summaries = for_thing["executionSummaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["jobId"], "fw-21");
    assert_eq!(summaries[0]["jobExecutionSummary"]["status"], "QUEUED");
    let for_job = ok(d, &["jobs", "executions", "--job", "fw-21"]);
    assert_eq!(for_job.lines().count(), 3, "{for_job}");
}

#[test]
fn cancel_and_delete_follow_aws_rules() {
    let (data, document) = setup();
    let d = data.path();
    ok(
        d,
        &[
            "jobs",
            "create",
            "fw-22",
            "--targets",
            "thing/dev1",
            "--document",
            &document,
            "--continuous",
        ],
    );
    let listed = json(d, &["jobs", "list", "--json"]);
    assert_eq!(listed["jobs"][0]["targetSelection"], "CONTINUOUS");

    // An IN_PROGRESS job cannot be deleted without --force.
    let refused = fails(d, &["jobs", "delete", "fw-22"]);
    assert!(refused.contains("error:"), "{refused}");

    let canceled = ok(
        d,
        &["jobs", "cancel", "fw-22", "--reason-code", "BAD_IMAGE"],
    );
    assert!(canceled.contains("job fw-22 canceled"), "{canceled}");
    let described = json(d, &["jobs", "describe", "fw-22", "--json"]);
    assert_eq!(described["job"]["status"], "CANCELED");
    assert_eq!(described["job"]["reasonCode"], "BAD_IMAGE");
    let executions = ok(d, &["jobs", "executions", "--thing", "dev1"]);
    assert!(executions.contains("fw-22\tCANCELED"), "{executions}");

    ok(d, &["jobs", "delete", "fw-22"]);
    let gone = fails(d, &["jobs", "describe", "fw-22"]);
    assert!(gone.contains("fw-22"), "{gone}");
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let (data, document) = setup();
    let d = data.path();
    // `jobs create ID --targets thing/dev1 --document DOCUMENT EXTRA…`, refused.
    let create_fails = |id: &str, document: &Path, extra: &[&str]| {
        let mut args = vec![
            "jobs",
            "create",
            id,
            "--targets",
            "thing/dev1",
            "--document",
        ];
        args.push(document.to_str().unwrap());
        args.extend_from_slice(extra);
        fails(d, &args)
    };
    let e = create_fails("j1", &d.join("missing.json"), &[]);
    assert!(e.contains("cannot read the job document"), "{e}");
    let not_json = d.join("bad.json");
    std::fs::write(&not_json, "{not json").unwrap();
    let e = create_fails("j1", &not_json, &[]);
    assert!(e.contains("is not JSON"), "{e}");
    let document = Path::new(&document);
    let e = create_fails("j1", document, &["--timeout", "soon"]);
    assert!(e.contains("invalid timeout"), "{e}");
    let e = create_fails("bad.id", document, &[]);
    assert!(e.contains("error:"), "{e}");
    let e = fails(d, &["jobs", "executions"]);
    assert!(e.contains("--thing"), "{e}");
    let e = fails(d, &["jobs", "cancel", "nope"]);
    assert!(e.contains("nope"), "{e}");
}
