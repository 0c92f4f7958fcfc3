//! The Jobs notifications as streams: `notify-next` and `notify`, picked
//! out of the messages on the notification topics.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use iotcore_model::jobs::{JobExecutionsChanged, JobsApi, JobsTopic, NextJobExecutionChanged};
use serde::de::DeserializeOwned;

use crate::mailbox::Receiver;
use crate::message::Message;

/// The notification of `api` in `message`, if it is one; a malformed one is
/// logged and skipped.
fn pick<T: DeserializeOwned>(message: &Message, api: JobsApi<'static>) -> Option<T> {
    let topic = JobsTopic::parse(message.topic()).ok()?;
    if topic.api() != api {
        return None;
    }
    serde_json::from_slice(message.payload())
        .inspect_err(|e| {
            tracing::warn!(topic = message.topic(), error = %e, "malformed Jobs notification ignored");
        })
        .ok()
}

/// A `notify-next` notification.
pub(crate) fn next_changed<D: DeserializeOwned>(
    message: &Message,
) -> Option<NextJobExecutionChanged<D>> {
    pick(message, JobsApi::NotifyNext)
}

/// A `notify` notification.
pub(crate) fn list_changed(message: &Message) -> Option<JobExecutionsChanged> {
    pick(message, JobsApi::Notify)
}

/// The thing's `…/jobs/notify-next` notifications: the next execution to run
/// changed (a job was queued when none was pending, the first one finished
/// or was canceled…), with its job document as `D`; `execution` is `None`
/// when nothing is pending any more.
///
/// Created by [`JobsClient::next_job_changes`](super::JobsClient::next_job_changes);
/// receives from its creation on, follows the crate's overflow rule (a full
/// buffer discards its oldest notification, counted by
/// [`dropped_notifications`](Self::dropped_notifications)), and ends when the
/// client is closed. Notifications sent while the client is offline are lost
/// unless the broker keeps the session: ask for the pending executions after
/// a reconnect, or let a [`JobRunner`](super::JobRunner) do it.
pub struct NextJobChanges<D = serde_json::Value> {
    rx: Receiver<NextJobExecutionChanged<D>>,
    _document: PhantomData<fn() -> D>,
}

impl<D> NextJobChanges<D> {
    pub(crate) fn new(rx: Receiver<NextJobExecutionChanged<D>>) -> Self {
        NextJobChanges {
            rx,
            _document: PhantomData,
        }
    }

    /// How many notifications were discarded because the buffer was full.
    pub fn dropped_notifications(&self) -> u64 {
        self.rx.dropped()
    }
}

impl<D> Stream for NextJobChanges<D> {
    type Item = NextJobExecutionChanged<D>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl<D> std::fmt::Debug for NextJobChanges<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextJobChanges").finish_non_exhaustive()
    }
}

/// The thing's `…/jobs/notify` notifications: the list of pending executions
/// changed (one was queued, or one finished). Created by
/// [`JobsClient::job_list_changes`](super::JobsClient::job_list_changes);
/// otherwise like [`NextJobChanges`].
pub struct JobListChanges {
    rx: Receiver<JobExecutionsChanged>,
}

impl JobListChanges {
    pub(crate) fn new(rx: Receiver<JobExecutionsChanged>) -> Self {
        JobListChanges { rx }
    }

    /// How many notifications were discarded because the buffer was full.
    pub fn dropped_notifications(&self) -> u64 {
        self.rx.dropped()
    }
}

impl Stream for JobListChanges {
    type Item = JobExecutionsChanged;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl std::fmt::Debug for JobListChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobListChanges").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QoS;
    use iotcore_model::jobs::JobExecutionStatus;
    use iotcore_mqtt::packet::Publish;
    use serde_json::Value;

    fn message(topic: &str, payload: &str) -> Message {
        Message::new(Publish::new(topic, payload.to_owned(), QoS::AtLeastOnce))
    }

    #[test]
    fn notifications_are_picked_by_topic_and_malformed_ones_skipped() {
        let next = message(
            "$aws/things/dev1/jobs/notify-next",
            r#"{"timestamp":2,"execution":{"jobId":"j1","status":"QUEUED","queuedAt":1,
                "lastUpdatedAt":1,"versionNumber":1,"executionNumber":1,"jobDocument":{"op":"x"}}}"#,
        );
        let list = message(
            "$aws/things/dev1/jobs/notify",
            r#"{"timestamp":2,"jobs":{"QUEUED":[{"jobId":"j1","queuedAt":1,"lastUpdatedAt":1,
                "versionNumber":1,"executionNumber":1}]}}"#,
        );
        let changed = next_changed::<Value>(&next).expect("a notify-next");
        assert_eq!(changed.execution.unwrap().job_document.unwrap()["op"], "x");
        assert!(next_changed::<Value>(&list).is_none());
        let listed = list_changed(&list).expect("a notify");
        assert_eq!(listed.jobs[&JobExecutionStatus::Queued][0].job_id, "j1");
        assert!(list_changed(&next).is_none());
        for (topic, payload) in [
            ("$aws/things/dev1/jobs/notify-next", "not json"),
            ("$aws/things/dev1/jobs/notify", r#"{"jobs":{}}"#),
            ("$aws/things/dev1/jobs/get/accepted", "{}"),
            ("somewhere/else", "{}"),
        ] {
            let m = message(topic, payload);
            assert!(next_changed::<Value>(&m).is_none(), "{topic}");
            assert!(list_changed(&m).is_none(), "{topic}");
        }
    }
}
