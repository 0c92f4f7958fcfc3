#!/usr/bin/env python3
"""A Jobs device peer built on AWS's IoT Device SDK v2 for Python (awsiot.iotjobs).

Used by the emulator's integration tests (through iotcore-test-support's `spawn_peer`) to check
that AWS's own jobs clients work against the emulator's Jobs device API.

Connects like awsiot_pubsub.py (mutual TLS; `--protocol 3` for MQTT 3.1.1, `5` for MQTT 5),
then runs the flow of AWS's jobs sample with one of the SDK's two jobs clients:

  --client v1   `IotJobsClient`: subscribes to the exact accepted/rejected topics and to
                notify-next, publishes requests with its own clientToken and matches the
                replies by that token;
  --client v2   `IotJobsClientV2`: the request-response client (it subscribes to `…/get/+`
                etc. around each request and correlates by clientToken) and a notify-next
                stream.

The scenario, for a thing with no job yet:

  1. subscribe to notify-next, print "ready", wait for a notification naming a job (the test
     creates one while the device is connected);
  2. get pending                        → the job is queued
  3. describe `$next`                   → the job, with its document
  4. start next (step timeout 5 min)    → IN_PROGRESS, version 2
  5. update to SUCCEEDED with expectedVersion 2 and includeJobExecutionState → SUCCEEDED
  6. wait for notify-next without an execution (nothing is pending any more)
  7. update to SUCCEEDED again          → rejected InvalidStateTransition, with the state

Events, one JSON object per line on stdout:

  {"event": "connected", ...}
  {"event": "ready"}
  {"event": "notify-next", "job_id": "...", "status": "QUEUED", "document": {...}}
  {"event": "pending", "queued": ["..."], "in_progress": [], "token_ok": true}
  {"event": "describe", "job_id": "...", "document": {...}, "status": "QUEUED", "token_ok": true}
  {"event": "start-next", "job_id": "...", "status": "IN_PROGRESS", "version": 2, ...}
  {"event": "update", "status": "SUCCEEDED", "version": 3, "token_ok": true}
  {"event": "notify-next", "job_id": null}
  {"event": "rejected", "code": "InvalidStateTransition", "state": "SUCCEEDED", ...}
  {"event": "disconnected"}
  {"event": "error", "stage": "...", "message": "..."}

Exit status: 0 when every step got the reply above, 1 otherwise, 2 when `--timeout` runs out.
"""

import queue
import sys
import threading
import uuid

from awscrt import mqtt, mqtt_request_response
import awsiot
from awsiot import iotjobs

from awsiot_pubsub import (EXIT_TIMEOUT, Failed, emit, main, open_service_peer,
                           parse_service_peer_args, service_peer_parser)
from awsiot_shadow import Replies

QOS = mqtt.QoS.AT_LEAST_ONCE


class JobsRequests:
    """The scenario's requests, made with the client's own `_request(op, class, **fields)`."""

    def get_pending(self):
        return self._request("get_pending_job_executions", iotjobs.GetPendingJobExecutionsRequest)

    def describe_next(self):
        return self._request("describe_job_execution", iotjobs.DescribeJobExecutionRequest,
                             job_id="$next", include_job_document=True)

    def start_next(self):
        return self._request("start_next_pending_job_execution",
                             iotjobs.StartNextPendingJobExecutionRequest,
                             step_timeout_in_minutes=5)


class JobsV1(JobsRequests):
    """`IotJobsClient`: exact subscriptions, requests matched by clientToken."""

    def __init__(self, protocol_client, args, deadline, nexts):
        self.client = iotjobs.IotJobsClient(protocol_client)
        self.thing = args.thing
        self.deadline = deadline
        self.replies = Replies(deadline)
        self.nexts = nexts
        self.update_subscribed = None

    def _subscribe(self, op, request):
        for outcome in ("accepted", "rejected"):
            subscribe = getattr(self.client, f"subscribe_to_{op}_{outcome}")
            future, _ = subscribe(request, QOS,
                                  lambda r, outcome=outcome: self.replies.add(outcome, r))
            self.deadline.wait_future(future, f"subscribe {op}/{outcome}")

    def start(self):
        future, _ = self.client.subscribe_to_next_job_execution_changed_events(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=self.thing), QOS,
            self.nexts.put)
        self.deadline.wait_future(future, "subscribe notify-next")
        thing = self.thing
        self._subscribe("get_pending_job_executions",
                        iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing))
        self._subscribe("start_next_pending_job_execution",
                        iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing))
        self._subscribe("describe_job_execution",
                        iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing,
                                                                        job_id="$next"))

    def _request(self, op, request_class, **fields):
        token = str(uuid.uuid4())
        request = request_class(thing_name=self.thing, client_token=token, **fields)
        publish = getattr(self.client, f"publish_{op}")
        self.deadline.wait_future(publish(request, QOS), f"publish {op}")
        outcome, response = self.replies.wait(token, op)
        return outcome, response, response.client_token == token

    def update(self, job_id, **fields):
        if self.update_subscribed != job_id:
            self._subscribe("update_job_execution",
                            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=self.thing,
                                                                          job_id=job_id))
            self.update_subscribed = job_id
        return self._request("update_job_execution", iotjobs.UpdateJobExecutionRequest,
                             job_id=job_id, **fields)


class JobsV2(JobsRequests):
    """`IotJobsClientV2`: the request-response client and a notify-next stream."""

    def __init__(self, protocol_client, args, deadline, nexts):
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=3, max_streaming_subscriptions=2,
            operation_timeout_in_seconds=max(1, int(deadline.remaining())))
        self.client = iotjobs.IotJobsClientV2(protocol_client, options)
        self.thing = args.thing
        self.deadline = deadline
        self.nexts = nexts
        self.subscribed = threading.Event()
        self.stream = None

    def _on_status(self, event):
        if event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
            self.subscribed.set()

    def start(self):
        options = awsiot.ServiceStreamOptions(incoming_event_listener=self.nexts.put,
                                              subscription_status_listener=self._on_status)
        self.stream = self.client.create_next_job_execution_changed_stream(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=self.thing), options)
        self.stream.open()
        if not self.subscribed.wait(timeout=self.deadline.remaining()):
            raise Failed("subscribe notify-next", "the stream did not subscribe in time",
                         EXIT_TIMEOUT)

    def _request(self, op, request_class, **fields):
        request = request_class(thing_name=self.thing, **fields)
        try:
            response = getattr(self.client, op)(request).result(
                timeout=self.deadline.remaining())
        except awsiot.V2ServiceException as e:
            if e.modeled_error is None:
                raise Failed(op, f"{e.message}: {e.inner_error}") from e
            return "rejected", e.modeled_error, True
        except TimeoutError as e:
            raise Failed(op, "no reply in time", EXIT_TIMEOUT) from e
        return "accepted", response, True

    def update(self, job_id, **fields):
        return self._request("update_job_execution", iotjobs.UpdateJobExecutionRequest,
                             job_id=job_id, **fields)


def accepted(op, reply):
    outcome, response, token_ok = reply
    if outcome != "accepted":
        raise Failed(op, f"rejected: {response.code}: {response.message}")
    if not token_ok:
        raise Failed(op, "the reply carried another clientToken")
    return response


def next_event(nexts, deadline, stage):
    try:
        return nexts.get(timeout=deadline.remaining())
    except queue.Empty as e:
        raise Failed(stage, "no notify-next in time", EXIT_TIMEOUT) from e


def scenario(jobs, nexts, deadline):
    jobs.start()
    emit("ready")
    event = next_event(nexts, deadline, "notify-next")
    if event.execution is None:
        raise Failed("notify-next", "the first notification names no job")
    job_id = event.execution.job_id
    emit("notify-next", job_id=job_id, status=event.execution.status,
         document=event.execution.job_document)

    pending = accepted("pending", jobs.get_pending())
    emit("pending", queued=[s.job_id for s in pending.queued_jobs or []],
         in_progress=[s.job_id for s in pending.in_progress_jobs or []], token_ok=True)

    described = accepted("describe", jobs.describe_next()).execution
    emit("describe", job_id=described.job_id, status=described.status,
         document=described.job_document, version=described.version_number, token_ok=True)

    started = accepted("start-next", jobs.start_next()).execution
    emit("start-next", job_id=started.job_id, status=started.status,
         version=started.version_number, execution_number=started.execution_number,
         started=started.started_at is not None, token_ok=True)

    updated = accepted("update", jobs.update(job_id, status=iotjobs.JobStatus.SUCCEEDED,
                                             expected_version=started.version_number,
                                             include_job_execution_state=True))
    state = updated.execution_state
    emit("update", status=state.status, version=state.version_number, token_ok=True)

    event = next_event(nexts, deadline, "notify-next (empty)")
    emit("notify-next", job_id=event.execution.job_id if event.execution else None)

    outcome, error, _ = jobs.update(job_id, status=iotjobs.JobStatus.SUCCEEDED)
    if outcome != "rejected":
        raise Failed("update again", "a second SUCCEEDED was accepted")
    emit("rejected", code=error.code, message=error.message,
         state=error.execution_state.status if error.execution_state else None)


def parse_args(argv):
    p = service_peer_parser(__doc__.split("\n\n")[0],
                            "v1 = IotJobsClient, v2 = IotJobsClientV2")
    p.add_argument("--thing", help="the thing whose jobs to run (default: --client-id)")
    args = parse_service_peer_args(p, argv)
    args.thing = args.thing or args.client_id
    return args


def run(args):
    deadline, peer, client = open_service_peer(args)
    nexts = queue.Queue()
    jobs_class = JobsV2 if args.client == "v2" else JobsV1
    scenario(jobs_class(client, args, deadline, nexts), nexts, deadline)
    peer.disconnect()
    emit("disconnected")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], parse_args, run))
