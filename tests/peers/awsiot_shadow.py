#!/usr/bin/env python3
"""A Device Shadow peer built on AWS's IoT Device SDK v2 for Python (awsiot.iotshadow).

Used by the emulator's integration tests (through iotcore-test-support's `spawn_peer`) to check
that AWS's own shadow clients work against the emulator's Device Shadow service.

Connects like awsiot_pubsub.py (mutual TLS; `--protocol 3` for MQTT 3.1.1, `5` for MQTT 5),
then drives the classic shadow of `--thing` (or the named shadow `--shadow`) with one of the
SDK's two shadow clients:

  --client v1   `IotShadowClient`: subscribes once to the exact accepted/rejected topics and
                to `update/delta`, publishes requests with its own clientToken and matches
                the replies by that token;
  --client v2   `IotShadowClientV2`: the request-response client, which subscribes to
                `…/get/+` (etc.) around each request and correlates by clientToken, and a delta
                stream.

The scenario, on a shadow that does not exist yet:

  1. get                                         → rejected 404
  2. update reported {"color":"red","seq":[1,2]} → accepted, version 1
  3. print "ready" and wait for a delta (the test changes `desired` from the cloud side)
  4. update reported to the delta's values       → accepted
  5. get                                         → accepted: the whole document, no delta
  6. update with the stale version 1             → rejected 409
  7. delete                                      → accepted

Events, one JSON object per line on stdout:

  {"event": "connected", "protocol": 3, "session_present": false}
  {"event": "get", "outcome": "rejected", "code": 404, "message": "...", "token_ok": true}
  {"event": "update", "outcome": "accepted", "version": 1, "state": {...}, "token_ok": true}
  {"event": "ready"}
  {"event": "delta", "state": {...}, "version": 2}
  {"event": "get", "outcome": "accepted", "version": 3, "state": {...}, "token_ok": true}
  {"event": "delete", "outcome": "accepted", "version": 3, "token_ok": true}
  {"event": "received", ...}                 (every PUBLISH, as awsiot_pubsub.py prints them)
  {"event": "disconnected"}
  {"event": "error", "stage": "...", "message": "..."}

`token_ok` says the reply carried the request's clientToken (v2 checks that itself).
Exit status: 0 when every step got the reply above, 1 otherwise, 2 when `--timeout` runs out.
"""

import queue
import sys
import threading
import uuid

from awscrt import mqtt, mqtt_request_response
import awsiot
from awsiot import iotshadow

from awsiot_pubsub import (EXIT_TIMEOUT, Failed, emit, main, open_service_peer,
                           parse_service_peer_args, service_peer_parser)


def state_of(state):
    """The desired/reported/delta of a modeled state, as a dict without the absent ones."""
    if state is None:
        return None
    return {k: getattr(state, k) for k in ("desired", "reported", "delta")
            if getattr(state, k, None) is not None}


class Replies:
    """Replies received on subscribed topics, waited for by clientToken (client v1)."""

    def __init__(self, deadline):
        self.deadline = deadline
        self.cond = threading.Condition()
        self.by_token = {}

    def add(self, outcome, response):
        with self.cond:
            self.by_token[response.client_token] = (outcome, response)
            self.cond.notify_all()

    def wait(self, token, stage):
        with self.cond:
            if not self.cond.wait_for(lambda: token in self.by_token,
                                      timeout=self.deadline.remaining()):
                raise Failed(stage, f"no reply with clientToken {token} in time", EXIT_TIMEOUT)
            return self.by_token.pop(token)


class ShadowV1:
    """`IotShadowClient`: exact subscriptions made once, requests matched by clientToken."""

    def __init__(self, protocol_client, args, deadline, deltas):
        self.client = iotshadow.IotShadowClient(protocol_client)
        self.thing, self.shadow = args.thing, args.shadow
        self.deadline = deadline
        self.replies = Replies(deadline)
        self.deltas = deltas

    def _names(self, request_class, named_class, **fields):
        if self.shadow:
            return named_class(thing_name=self.thing, shadow_name=self.shadow, **fields)
        return request_class(thing_name=self.thing, **fields)

    def _method(self, template):
        return getattr(self.client, template.format("named_shadow" if self.shadow else "shadow"))

    def start(self):
        qos = mqtt.QoS.AT_LEAST_ONCE
        for op, sub_class, named_sub_class in (
                ("get", iotshadow.GetShadowSubscriptionRequest,
                 iotshadow.GetNamedShadowSubscriptionRequest),
                ("update", iotshadow.UpdateShadowSubscriptionRequest,
                 iotshadow.UpdateNamedShadowSubscriptionRequest),
                ("delete", iotshadow.DeleteShadowSubscriptionRequest,
                 iotshadow.DeleteNamedShadowSubscriptionRequest)):
            for outcome in ("accepted", "rejected"):
                subscribe = self._method(f"subscribe_to_{op}_{{}}_{outcome}")
                future, _ = subscribe(self._names(sub_class, named_sub_class), qos,
                                      lambda r, outcome=outcome: self.replies.add(outcome, r))
                self.deadline.wait_future(future, f"subscribe {op}/{outcome}")
        subscribe = self._method("subscribe_to_{}_delta_updated_events")
        request = self._names(iotshadow.ShadowDeltaUpdatedSubscriptionRequest,
                              iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest)
        future, _ = subscribe(request, qos, self.deltas.put)
        self.deadline.wait_future(future, "subscribe delta")

    def _request(self, op, request_class, named_class, **fields):
        token = str(uuid.uuid4())
        request = self._names(request_class, named_class, client_token=token, **fields)
        publish = self._method(f"publish_{op}_{{}}")
        self.deadline.wait_future(publish(request, mqtt.QoS.AT_LEAST_ONCE), f"publish {op}")
        outcome, response = self.replies.wait(token, op)
        return outcome, response, response.client_token == token

    def get(self):
        return self._request("get", iotshadow.GetShadowRequest, iotshadow.GetNamedShadowRequest)

    def update(self, reported, version=None):
        return self._request("update", iotshadow.UpdateShadowRequest,
                             iotshadow.UpdateNamedShadowRequest,
                             state=iotshadow.ShadowState(reported=reported), version=version)

    def delete(self):
        return self._request("delete", iotshadow.DeleteShadowRequest,
                             iotshadow.DeleteNamedShadowRequest)


class ShadowV2:
    """`IotShadowClientV2`: the request-response client and a delta stream."""

    def __init__(self, protocol_client, args, deadline, deltas):
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=3, max_streaming_subscriptions=2,
            operation_timeout_in_seconds=max(1, int(deadline.remaining())))
        self.client = iotshadow.IotShadowClientV2(protocol_client, options)
        self.thing, self.shadow = args.thing, args.shadow
        self.deadline = deadline
        self.deltas = deltas
        self.subscribed = threading.Event()
        self.stream = None

    def _names(self, request_class, named_class, **fields):
        if self.shadow:
            return named_class(thing_name=self.thing, shadow_name=self.shadow, **fields)
        return request_class(thing_name=self.thing, **fields)

    def _on_status(self, event):
        if event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
            self.subscribed.set()

    def start(self):
        options = awsiot.ServiceStreamOptions(incoming_event_listener=self.deltas.put,
                                              subscription_status_listener=self._on_status)
        request = self._names(iotshadow.ShadowDeltaUpdatedSubscriptionRequest,
                              iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest)
        create = (self.client.create_named_shadow_delta_updated_stream if self.shadow
                  else self.client.create_shadow_delta_updated_stream)
        self.stream = create(request, options)
        self.stream.open()
        if not self.subscribed.wait(timeout=self.deadline.remaining()):
            raise Failed("subscribe delta", "the delta stream did not subscribe in time",
                         EXIT_TIMEOUT)

    def _request(self, op, request_class, named_class, **fields):
        request = self._names(request_class, named_class, **fields)
        method = getattr(self.client, f"{op}_named_shadow" if self.shadow else f"{op}_shadow")
        try:
            response = method(request).result(timeout=self.deadline.remaining())
        except awsiot.V2ServiceException as e:
            if e.modeled_error is None:
                raise Failed(op, f"{e.message}: {e.inner_error}") from e
            return "rejected", e.modeled_error, True
        except TimeoutError as e:
            raise Failed(op, "no reply in time", EXIT_TIMEOUT) from e
        return "accepted", response, True

    def get(self):
        return self._request("get", iotshadow.GetShadowRequest, iotshadow.GetNamedShadowRequest)

    def update(self, reported, version=None):
        return self._request("update", iotshadow.UpdateShadowRequest,
                             iotshadow.UpdateNamedShadowRequest,
                             state=iotshadow.ShadowState(reported=reported), version=version)

    def delete(self):
        return self._request("delete", iotshadow.DeleteShadowRequest,
                             iotshadow.DeleteNamedShadowRequest)


def report(op, reply, expected_outcome):
    """Prints the reply of `op` and fails unless its outcome is `expected_outcome`."""
    outcome, response, token_ok = reply
    fields = {"outcome": outcome, "token_ok": token_ok}
    if outcome == "rejected":
        fields.update(code=response.code, message=response.message)
    else:
        fields["version"] = response.version
        if getattr(response, "state", None) is not None:
            fields["state"] = state_of(response.state)
    emit(op, **fields)
    if outcome != expected_outcome:
        raise Failed(op, f"expected {expected_outcome}, got {outcome}: {fields}")
    return response


def scenario(shadow, deltas, deadline):
    shadow.start()
    report("get", shadow.get(), "rejected")
    report("update", shadow.update({"color": "red", "seq": [1, 2]}), "accepted")
    emit("ready")
    try:
        delta = deltas.get(timeout=deadline.remaining())
    except queue.Empty as e:
        raise Failed("delta", "no delta in time", EXIT_TIMEOUT) from e
    emit("delta", state=delta.state, version=delta.version)
    report("update", shadow.update(delta.state), "accepted")
    report("get", shadow.get(), "accepted")
    report("update", shadow.update({"color": "stale"}, version=1), "rejected")
    report("delete", shadow.delete(), "accepted")


def parse_args(argv):
    p = service_peer_parser(__doc__.split("\n\n")[0],
                            "v1 = IotShadowClient, v2 = IotShadowClientV2")
    p.add_argument("--thing", help="the thing whose shadow to use (default: --client-id)")
    p.add_argument("--shadow", help="a named shadow (default: the classic shadow)")
    args = parse_service_peer_args(p, argv)
    args.thing = args.thing or args.client_id
    return args


def run(args):
    deadline, peer, client = open_service_peer(args)
    deltas = queue.Queue()
    shadow_class = ShadowV2 if args.client == "v2" else ShadowV1
    scenario(shadow_class(client, args, deadline, deltas), deltas, deadline)
    peer.disconnect()
    emit("disconnected")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], parse_args, run))
