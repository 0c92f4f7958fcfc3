//! Evaluation rules, one statement kind at a time. The table of end-to-end
//! cases (engine and broker) is in `tests/policy.rs`.

use serde_json::json;

use super::*;
use crate::store::ThingRecord;

const PREFIX: &str = "arn:aws:iot:us-east-1:123456789012:";

fn context(client_id: &str, thing: Option<&str>) -> RequestContext {
    let mut certificate = CertificateAttributes::default();
    certificate.add("Subject.CommonName", "dev-1");
    RequestContext {
        client_id: client_id.into(),
        source_ip: Some("127.0.0.1".parse().unwrap()),
        certificate_id: "ab".repeat(32),
        certificate,
        thing: thing.map(|name| ThingRecord {
            name: name.into(),
            thing_type: None,
            attributes: Default::default(),
            created_at: 0,
            thing_id: String::new(),
            version: 1,
        }),
    }
}

fn policy(name: &str, statements: serde_json::Value) -> AttachedPolicy {
    let text = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    AttachedPolicy {
        name: name.into(),
        version: 1,
        document: PolicyDocument::parse(&text).expect("valid policy"),
    }
}

fn principal(policies: &[AttachedPolicy]) -> Principal {
    Principal::new(
        context("dev-1", Some("dev-1")),
        policies,
        ArnScope::default(),
    )
}

#[test]
fn an_allow_names_its_statement() {
    let p = principal(&[policy(
        "p",
        json!([{"Sid": "Pub", "Effect": "Allow", "Action": "iot:Publish",
                "Resource": format!("{PREFIX}topic/dt/dev-1/*")}]),
    )]);
    let d = p.evaluate_name(Action::Publish, "dt/dev-1/temp");
    assert!(d.is_allowed());
    assert_eq!(
        d.to_string(),
        format!(
            "iot:Publish on {PREFIX}topic/dt/dev-1/temp allowed by policy \"p\" version 1, \
             Statement[0] (Sid \"Pub\")"
        )
    );
}

#[test]
fn an_explicit_deny_wins_over_any_allow_in_any_policy() {
    let allow = policy(
        "a-allow",
        json!([{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]),
    );
    let deny = policy(
        "z-deny",
        json!([{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
               {"Effect": "Deny", "Action": "iot:Publish",
                "Resource": format!("{PREFIX}topic/secret/*")}]),
    );
    let p = principal(&[allow, deny]);
    let d = p.evaluate_name(Action::Publish, "secret/x");
    assert!(!d.is_allowed());
    assert_eq!(
        d.reason,
        Reason::ExplicitDeny(StatementRef {
            policy: "z-deny".into(),
            version: 1,
            index: 1,
            sid: None
        })
    );
    assert!(p.evaluate_name(Action::Publish, "public/x").is_allowed());
}

#[test]
fn no_allow_means_deny_and_says_which_policies_were_evaluated() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]),
    )]);
    let d = p.evaluate_name(Action::Publish, "a");
    assert_eq!(
        d.reason,
        Reason::NoAllow {
            policies: vec!["p".into()],
            unresolved: vec![],
            unmet: vec![]
        }
    );
    assert!(
        d.to_string()
            .contains("no statement allowed it (policies evaluated: p)"),
        "{d}"
    );
    let none = principal(&[]);
    assert!(
        none.evaluate_name(Action::Connect, "dev-1")
            .to_string()
            .contains("has no policy attached")
    );
}

#[test]
fn action_wildcards_and_case_follow_iam() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "Action": ["IOT:pub*", "iot:?eceive"], "Resource": "*"}]),
    )]);
    assert!(p.evaluate_name(Action::Publish, "a").is_allowed());
    assert!(p.evaluate_name(Action::Receive, "a").is_allowed());
    assert!(!p.evaluate_name(Action::Subscribe, "a").is_allowed());
    assert!(!p.evaluate_name(Action::RetainPublish, "a").is_allowed());
}

#[test]
fn not_action_and_not_resource_match_the_complement() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"},
               {"Effect": "Allow", "Action": "iot:Publish",
                "NotResource": format!("{PREFIX}topic/private/*")}]),
    )]);
    assert!(p.evaluate_name(Action::Subscribe, "x").is_allowed());
    assert!(p.evaluate_name(Action::Publish, "public/x").is_allowed());
    assert!(!p.evaluate_name(Action::Publish, "private/x").is_allowed());
}

#[test]
fn topic_and_topicfilter_are_different_resources() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"],
                "Resource": format!("{PREFIX}topic/a/*")}]),
    )]);
    assert!(p.evaluate_name(Action::Receive, "a/b").is_allowed());
    assert!(!p.evaluate_name(Action::Subscribe, "a/b").is_allowed());
}

#[test]
fn an_unresolved_variable_matches_nothing_and_is_explained() {
    let p = Principal::new(
        context("not-a-thing", None),
        &[policy(
            "p",
            json!([{"Effect": "Allow", "Action": "iot:Connect",
                    "Resource": format!("{PREFIX}client/${{iot:Connection.Thing.ThingName}}")}]),
        )],
        ArnScope::default(),
    );
    let d = p.evaluate_name(Action::Connect, "not-a-thing");
    assert!(!d.is_allowed());
    let text = d.to_string();
    assert!(
        text.contains("${iot:Connection.Thing.ThingName} (client id \"not-a-thing\" is not the name of a thing"),
        "{text}"
    );
    // AWS leaves the text in the resource: only that literal name matches.
    assert!(
        p.evaluate_name(Action::Connect, "${iot:Connection.Thing.ThingName}")
            .is_allowed()
    );
}

#[test]
fn certificate_variables_are_replaced() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "Action": "iot:Publish",
                "Resource": format!("{PREFIX}topic/cn/${{iot:Certificate.Subject.CommonName}}")}]),
    )]);
    assert!(p.evaluate_name(Action::Publish, "cn/dev-1").is_allowed());
    assert!(!p.evaluate_name(Action::Publish, "cn/dev-2").is_allowed());
}

#[test]
fn a_statement_whose_condition_fails_is_skipped_even_if_it_denies() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
               {"Effect": "Deny", "Action": "iot:*", "Resource": "*",
                "Condition": {"StringEquals": {"iot:ClientId": "someone-else"}}}]),
    )]);
    assert!(p.evaluate_name(Action::Publish, "x").is_allowed());
}

#[test]
fn the_thing_template_confines_a_device_to_its_topics() {
    let doc = PolicyDocument::parse(&PolicyTemplate::Thing.render(&ArnScope::default())).unwrap();
    let policies = [AttachedPolicy {
        name: "dev-1-policy".into(),
        version: 1,
        document: doc,
    }];
    let p = principal(&policies);
    for (action, name, allowed) in [
        (Action::Connect, "dev-1", true),
        (Action::Connect, "dev-2", false),
        (Action::Publish, "dt/dev-1", true),
        (Action::Publish, "dt/dev-1/temp", true),
        (Action::Publish, "dt/dev-10/temp", false),
        (Action::Publish, "device/dev-1/messages/events", true),
        (
            Action::Receive,
            "device/dev-1/messages/devicebound/reboot",
            true,
        ),
        (
            Action::Subscribe,
            "device/dev-1/messages/devicebound/#",
            true,
        ),
        (Action::Subscribe, "cmd/dev-1", true),
        (
            Action::Subscribe,
            "$aws/things/dev-1/shadow/update/accepted",
            true,
        ),
        (
            Action::Subscribe,
            "$aws/things/+/shadow/update/accepted",
            false,
        ),
        (Action::Publish, "$aws/things/dev-2/shadow/update", false),
        (
            Action::Receive,
            "$aws/events/presence/connected/dev-2",
            false,
        ),
        (Action::Publish, "a/b", false),
        (Action::RetainPublish, "dt/dev-1/temp", true),
        (Action::RetainPublish, "dt/dev-2/temp", false),
    ] {
        assert_eq!(
            p.evaluate_name(action, name).is_allowed(),
            allowed,
            "{action} {name}"
        );
    }
    let other = Principal::new(context("dev-1", None), &policies, ArnScope::default());
    assert!(
        !other.evaluate_name(Action::Connect, "dev-1").is_allowed(),
        "a certificate not attached to the thing cannot connect as it"
    );
}

#[test]
fn actions_parse_with_or_without_prefix() {
    assert_eq!("iot:Publish".parse(), Ok(Action::Publish));
    assert_eq!("retainpublish".parse(), Ok(Action::RetainPublish));
    assert!("iot:Pub".parse::<Action>().is_err());
}

/// [`Principal::allows`], the per-message check, answers as the explained
/// evaluation does, for every kind of statement.
#[test]
fn the_per_message_check_agrees_with_the_explained_decision() {
    let statements = json!([
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [format!("{PREFIX}topic/dt/${{iot:ClientId}}/*"),
                      format!("{PREFIX}topic/cmd/${{iot:Connection.Thing.ThingName}}")]},
        {"Effect": "Deny", "Action": "iot:Publish", "Resource": format!("{PREFIX}topic/dt/*/secret")},
        {"Effect": "Allow", "Action": "iot:Sub*", "Resource": format!("{PREFIX}topicfilter/dt/+/*")},
        {"Effect": "Allow", "NotAction": ["iot:Publish", "iot:Subscribe"],
         "NotResource": format!("{PREFIX}*/private/*")},
        {"Effect": "Allow", "Action": "iot:RetainPublish", "Resource": "arn:aws:iot:*:*:topic/r/?"},
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
         "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
        {"Effect": "Deny", "Action": "iot:*", "Resource": "*",
         "Condition": {"StringEquals": {"iot:ClientId": "someone-else"}}},
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/elsewhere"}
    ]);
    let names = [
        "dev-1",
        "dev-2",
        "dt/dev-1/temp",
        "dt/dev-1/secret",
        "dt/dev-2/temp",
        "dt/+/x",
        "cmd/dev-1",
        "cmd/dev-1/x",
        "private/x",
        "r/1",
        "r/12",
        "elsewhere",
        "",
    ];
    for thing in [Some("dev-1"), None] {
        let p = Principal::new(
            context("dev-1", thing),
            &[policy("p", statements.clone())],
            ArnScope::default(),
        );
        let mut allowed = 0;
        for action in Action::ALL {
            for name in names {
                let decision = p.evaluate_name(action, name);
                assert_eq!(p.allows(action, name), decision.is_allowed(), "{decision}");
                allowed += usize::from(decision.is_allowed());
            }
        }
        assert!(allowed > 0 && allowed < Action::ALL.len() * names.len());
    }
}

const PERSISTENT: ConnectAttributes = ConnectAttributes {
    persistent_connect: true,
    last_will: false,
};

/// AWS's "Connect policy examples": a device may connect, but not with a
/// persistent session.
fn non_persistent_only() -> Principal {
    principal(&[policy(
        "no-persistent",
        json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
                "Condition": {"ForAllValues:StringNotEquals":
                              {"iot:ConnectAttributes": ["PersistentConnect"]}}}]),
    )])
}

#[test]
fn connect_attributes_decide_a_connect_and_the_denial_names_the_key() {
    let p = non_persistent_only();
    let resource = format!("{PREFIX}client/dev-1");
    assert!(
        p.evaluate_connect(&resource, ConnectAttributes::NONE)
            .is_allowed()
    );
    let denied = p.evaluate_connect(&resource, PERSISTENT);
    assert!(!denied.is_allowed());
    let Reason::NoAllow { unmet, .. } = &denied.reason else {
        panic!("{denied}");
    };
    assert_eq!(
        unmet,
        &[String::from(
            "policy \"no-persistent\" version 1, Statement[0]: its condition on \
             iot:ConnectAttributes does not hold for [PersistentConnect]"
        )]
    );
    let text = denied.to_string();
    assert!(
        text.starts_with(&format!(
            "iot:Connect on {resource} with iot:ConnectAttributes [PersistentConnect] denied"
        )),
        "{text}"
    );
    let allowed = p.evaluate_connect(&resource, ConnectAttributes::NONE);
    assert!(
        allowed
            .to_string()
            .contains("with no iot:ConnectAttributes"),
        "{allowed}"
    );
    // `evaluate` and the per-message check ask as for a CONNECT without
    // attributes.
    assert!(p.evaluate(Action::Connect, &resource).is_allowed());
    assert!(p.allows(Action::Connect, "dev-1"));
}

#[test]
fn connect_attributes_are_absent_from_every_request_but_connect() {
    let p = principal(&[policy(
        "persistent-only",
        json!([{"Effect": "Allow", "Action": "iot:*", "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals":
                              {"iot:ConnectAttributes": ["PersistentConnect"]}}}]),
    )]);
    let client = format!("{PREFIX}client/dev-1");
    assert!(p.evaluate_connect(&client, PERSISTENT).is_allowed());
    assert!(
        !p.evaluate_connect(&client, ConnectAttributes::NONE)
            .is_allowed()
    );
    // The key is only in iot:Connect's context: a ForAnyValue condition on
    // it never holds for a publish.
    assert!(!p.allows(Action::Publish, "dt/dev-1"));
    let publish = p.evaluate_name(Action::Publish, "dt/dev-1");
    assert!(!publish.is_allowed());
    assert_eq!(publish.connect_attributes, None);
}

#[test]
fn other_conditions_are_not_blamed_on_the_connect_attributes() {
    let p = principal(&[policy(
        "p",
        json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
                "Condition": {"StringEquals": {"iot:ClientId": "someone-else"},
                              "ForAllValues:StringEquals": {"iot:ConnectAttributes": ["LastWill"]}}}]),
    )]);
    let d = p.evaluate_connect(&format!("{PREFIX}client/dev-1"), PERSISTENT);
    assert!(
        d.to_string()
            .contains("Statement[0]: its conditions do not hold"),
        "{d}"
    );
}
