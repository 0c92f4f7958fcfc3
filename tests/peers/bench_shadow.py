#!/usr/bin/env python3
"""Shadow update round trips of AWS's IoT Device SDK v2 for Python (awsiot.iotshadow), the peer
of the shadow latency figures of `iotcore bench` (crates/bench/src/scenarios/latency.rs).

Connects over mutual TLS with `mqtt_connection_builder.mtls_from_path` (MQTT 3.1.1, clean
session), then updates the reported state of `--thing`'s classic shadow `--warm-up` times (not
measured) and `--requests` times (measured; fewer if `--max-seconds` pass first), one request at
a time, with one of the SDK's shadow clients:

  --client v1   `IotShadowClient`: subscribes once to `update/accepted` and `update/rejected`
                (at `--reply-qos`, 1 by default as in AWS's samples), publishes each request
                with a new clientToken and waits for the reply carrying it;
  --client v2   `IotShadowClientV2`: the request-response client; each `update_shadow` future
                resolves with the accepted reply.

A round trip is the time from just before the request is handed to the SDK to the moment the
accepted reply is in the script's hands. Prints one JSON object per line on stdout:

  {"event": "versions", "awsiotsdk": "...", "awscrt": "...", "python": "..."}
  {"event": "connected"}
  {"event": "round_trips", "client": "v1", "reply_qos": 1, "seconds": [s1, s2, ...]}
  {"event": "done"}

On failure prints {"event": "error", "message": "..."} and exits with status 1.
"""

import argparse
import json
import platform
import sys
import threading
import time
import uuid
from importlib import metadata

from awscrt import mqtt, mqtt_request_response
from awsiot import iotshadow, mqtt_connection_builder

# Seconds any single reply or future may take before the run is declared failed.
TIMEOUT = 30.0
QOS = {0: mqtt.QoS.AT_MOST_ONCE, 1: mqtt.QoS.AT_LEAST_ONCE}


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


class Failure(Exception):
    pass


class ClassicClient:
    """`IotShadowClient` with exact reply subscriptions made once, replies matched by token."""

    def __init__(self, connection, thing, reply_qos):
        self.client = iotshadow.IotShadowClient(connection)
        self.thing = thing
        self.cond = threading.Condition()
        self.replies = {}
        for subscribe, outcome in (
                (self.client.subscribe_to_update_shadow_accepted, "accepted"),
                (self.client.subscribe_to_update_shadow_rejected, "rejected")):
            future, _ = subscribe(
                iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing),
                reply_qos,
                lambda response, outcome=outcome: self._on_reply(outcome, response))
            future.result(TIMEOUT)

    def _on_reply(self, outcome, response):
        with self.cond:
            self.replies[response.client_token] = outcome
            self.cond.notify_all()

    def update(self, reported):
        token = str(uuid.uuid4())
        request = iotshadow.UpdateShadowRequest(
            thing_name=self.thing, client_token=token,
            state=iotshadow.ShadowState(reported=reported))
        published = self.client.publish_update_shadow(request, mqtt.QoS.AT_LEAST_ONCE)
        with self.cond:
            if not self.cond.wait_for(lambda: token in self.replies, timeout=TIMEOUT):
                raise Failure(f"no reply with clientToken {token} within {TIMEOUT} s")
            outcome = self.replies.pop(token)
        published.result(TIMEOUT)
        if outcome != "accepted":
            raise Failure(f"update {reported} was {outcome}")


class RequestResponseClient:
    """`IotShadowClientV2`: one future per request."""

    def __init__(self, connection, thing, _reply_qos):
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2, max_streaming_subscriptions=1,
            operation_timeout_in_seconds=int(TIMEOUT))
        self.client = iotshadow.IotShadowClientV2(connection, options)
        self.thing = thing

    def update(self, reported):
        request = iotshadow.UpdateShadowRequest(
            thing_name=self.thing, state=iotshadow.ShadowState(reported=reported))
        self.client.update_shadow(request).result(TIMEOUT)


def run(args):
    emit("versions", awsiotsdk=metadata.version("awsiotsdk"), awscrt=metadata.version("awscrt"),
         python=platform.python_version())
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=args.endpoint, port=args.port, cert_filepath=args.cert,
        pri_key_filepath=args.key, ca_filepath=args.ca, client_id=args.client_id,
        clean_session=True, keep_alive_secs=60)
    connection.connect().result(TIMEOUT)
    emit("connected")
    try:
        client_class = ClassicClient if args.client == "v1" else RequestResponseClient
        client = client_class(connection, args.thing, QOS[args.reply_qos])
        for n in range(args.warm_up):
            client.update({"n": n})
        seconds = []
        first = time.perf_counter()
        for n in range(args.requests):
            start = time.perf_counter()
            client.update({"n": n})
            seconds.append(time.perf_counter() - start)
            if args.max_seconds is not None and time.perf_counter() - first >= args.max_seconds:
                break
        emit("round_trips", client=args.client, reply_qos=args.reply_qos, seconds=seconds)
    finally:
        connection.disconnect().result(TIMEOUT)
    emit("done")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--thing", help="whose shadow to update (default: --client-id)")
    p.add_argument("--client", choices=("v1", "v2"), default="v1")
    p.add_argument("--reply-qos", type=int, choices=(0, 1), default=1,
                   help="QoS of v1's reply subscriptions (AWS's samples use 1)")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--warm-up", type=int, default=100)
    p.add_argument("--max-seconds", type=float,
                   help="stop measuring once this much time has passed (at least one request)")
    args = p.parse_args(argv)
    args.thing = args.thing or args.client_id
    try:
        run(args)
    except Exception as e:  # noqa: BLE001 - every failure is reported as an event
        emit("error", message=f"{type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
