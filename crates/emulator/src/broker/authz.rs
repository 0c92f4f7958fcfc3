//! Default authorization, in force until the policy engine exists.
//!
//! The rule, in AWS policy terms:
//!
//! * `iot:Connect`: the client id must be the name of a thing the client's
//!   certificate is attached to (what the AWS policy variable
//!   `${iot:Connection.Thing.ThingName}` with `iot:Connection.Thing.IsAttached`
//!   expresses).
//! * `iot:Publish`, `iot:Subscribe`, `iot:Receive`: allowed on every topic except
//!   the reserved topics of other things, `$aws/things/<other thing>/…`.
//!
//! A subscription with a wildcard in the thing-name level (`$aws/things/+/shadow/#`)
//! is allowed, and then only the client's own thing's messages are delivered to it,
//! as AWS IoT Core checks `iot:Receive` on each message it delivers.

use std::fmt;

/// What a client asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Publish to a topic name.
    Publish,
    /// Subscribe to a topic filter.
    Subscribe,
    /// Have a message on a topic name delivered.
    Receive,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
            Action::Receive => "receive",
        })
    }
}

/// Why an action was refused, for the emulator's log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Denied {
    /// The certificate is attached to no thing at all.
    #[error(
        "certificate {certificate_id} is attached to no thing; attach it to thing '{client_id}' or connect with the name of its thing as client id"
    )]
    Unattached {
        /// The certificate presented.
        certificate_id: String,
        /// The client id asked for.
        client_id: String,
    },
    /// The client id is not one of the certificate's things.
    #[error(
        "client id '{client_id}' is not the name of a thing certificate {certificate_id} is attached to (its things: {things}); connect with one of those names"
    )]
    ClientIdNotThing {
        /// The certificate presented.
        certificate_id: String,
        /// The client id asked for.
        client_id: String,
        /// The certificate's things, comma-separated.
        things: String,
    },
    /// The topic belongs to another thing.
    #[error(
        "{action} on '{topic}' is denied: it is a reserved topic of thing '{owner}', not of '{thing}'"
    )]
    ForeignReservedTopic {
        /// What was asked.
        action: Action,
        /// The topic name or filter.
        topic: String,
        /// The thing the topic belongs to.
        owner: String,
        /// The client's thing.
        thing: String,
    },
}

/// Checks `iot:Connect`: `client_id` must be one of `things`, the things the
/// certificate `certificate_id` is attached to.
pub(crate) fn authorize_connect(
    certificate_id: &str,
    client_id: &str,
    things: &[String],
) -> Result<(), Denied> {
    if things.iter().any(|t| t == client_id) {
        return Ok(());
    }
    if things.is_empty() {
        return Err(Denied::Unattached {
            certificate_id: certificate_id.to_owned(),
            client_id: client_id.to_owned(),
        });
    }
    Err(Denied::ClientIdNotThing {
        certificate_id: certificate_id.to_owned(),
        client_id: client_id.to_owned(),
        things: things.join(", "),
    })
}

/// Checks `iot:Publish`, `iot:Subscribe` or `iot:Receive` on `topic` (a topic
/// name, or a filter for [`Action::Subscribe`]) for the client of thing `thing`.
pub(crate) fn authorize(thing: &str, action: Action, topic: &str) -> Result<(), Denied> {
    let mut levels = topic.split('/');
    let (Some("$aws"), Some("things"), Some(owner)) = (levels.next(), levels.next(), levels.next())
    else {
        return Ok(());
    };
    let wildcard = action == Action::Subscribe && (owner == "+" || owner == "#");
    if owner == thing || wildcard {
        return Ok(());
    }
    Err(Denied::ForeignReservedTopic {
        action,
        topic: topic.to_owned(),
        owner: owner.to_owned(),
        thing: thing.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn things(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn connect_requires_the_client_id_to_be_one_of_the_certificates_things() {
        assert_eq!(
            authorize_connect("c1", "dev1", &things(&["dev0", "dev1"])),
            Ok(())
        );
        let err = authorize_connect("c1", "dev2", &things(&["dev0", "dev1"])).unwrap_err();
        assert!(matches!(err, Denied::ClientIdNotThing { .. }));
        assert!(err.to_string().contains("dev0, dev1"), "{err}");
        let err = authorize_connect("c1", "dev2", &[]).unwrap_err();
        assert!(matches!(err, Denied::Unattached { .. }), "{err}");
    }

    #[test]
    fn own_reserved_topics_and_ordinary_topics_are_allowed() {
        for action in [Action::Publish, Action::Subscribe, Action::Receive] {
            assert_eq!(
                authorize("dev1", action, "$aws/things/dev1/shadow/update"),
                Ok(())
            );
            assert_eq!(authorize("dev1", action, "sensors/dev2/temp"), Ok(()));
            assert_eq!(authorize("dev1", action, "$aws/things"), Ok(()));
            assert_eq!(
                authorize("dev1", action, "$aws/events/presence/connected/dev2"),
                Ok(())
            );
        }
    }

    #[test]
    fn other_things_reserved_topics_are_denied() {
        for action in [Action::Publish, Action::Subscribe, Action::Receive] {
            let err = authorize("dev1", action, "$aws/things/dev2/shadow/get").unwrap_err();
            assert_eq!(
                err,
                Denied::ForeignReservedTopic {
                    action,
                    topic: "$aws/things/dev2/shadow/get".into(),
                    owner: "dev2".into(),
                    thing: "dev1".into(),
                }
            );
        }
        assert!(authorize("dev1", Action::Publish, "$aws/things/dev10").is_err());
    }

    #[test]
    fn wildcard_thing_level_subscriptions_are_allowed_and_receive_is_checked_per_message() {
        assert_eq!(
            authorize(
                "dev1",
                Action::Subscribe,
                "$aws/things/+/shadow/update/accepted"
            ),
            Ok(())
        );
        assert_eq!(
            authorize("dev1", Action::Subscribe, "$aws/things/#"),
            Ok(())
        );
        assert!(
            authorize(
                "dev1",
                Action::Receive,
                "$aws/things/dev2/shadow/update/accepted"
            )
            .is_err()
        );
    }
}
