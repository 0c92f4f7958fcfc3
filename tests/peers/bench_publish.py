#!/usr/bin/env python3
"""Publish throughput of a Python MQTT client, for the client throughput part of `iotcore bench`
(crates/bench/src/scenarios/throughput.rs, which runs this script through
crates/bench/src/clients/python.rs).

`--client` picks the client; both connect over mutual TLS (MQTT 3.1.1, clean session,
keep-alive 60 s) with the given certificate, key and CA:
  * `awscrt`: AWS's IoT Device SDK v2 for Python, `mqtt_connection_builder.mtls_from_path`
    (awsiotsdk on awscrt); with `--door websocket-sigv4` instead, MQTT over WebSocket signed
    with SigV4 (`websockets_with_default_aws_signing`, static credentials from
    `--access-key-id` and `--secret-access-key`, region us-east-1);
  * `paho`: paho-mqtt's `Client` (callback API version 2), TLS from an `ssl.SSLContext`,
    network thread started with `loop_start()`, at most `--window` QoS 1 publishes in flight
    (`max_inflight_messages_set`).

Publishes `--warm-up` QoS 1 messages (pipelined, not measured), then runs each `--case` once
and prints one JSON object per line on stdout:

  {"event": "versions", "client": "awscrt", "python": "3.11.7",
   "packages": [["awsiotsdk", "1.31.0"], ["awscrt", "0.36.1"]]}
  {"event": "connected"}
  {"event": "result", "qos": 1, "size": 64, "mode": "pipelined", "messages": N,
   "seconds": S, "msgs_per_sec": R}
  {"event": "done"}

A case is `QOS:SIZE:MODE:COUNT`:
  * `pipelined`: keep up to `--window` publishes in flight; a publish leaves the window when
    it is delivered (QoS 1: its PUBACK arrived; QoS 0: it was written to the socket). awscrt:
    publish futures, waiting for the oldest when the window is full; paho: `on_publish`
    callbacks counted under a `threading.Condition`;
  * `sequential`: the same with a window of one (each publish waited for before the next).
At QoS 0 the timing ends with a final QoS 1 publish (not counted) whose PUBACK says that the
broker has read everything before it, so "delivered" means received by the broker.

With `--rss`, instead: prints the versions event, then {"event": "rss", "before_kb": A,
"after_kb": B} with this process's VmRSS after importing the client's library and after
connecting and idling for `--idle` seconds.

On failure prints {"event": "error", "message": "..."} and exits with status 1.
"""

import argparse
import collections
import json
import platform
import sys
import threading
import time
from importlib import metadata

# Seconds any single wait (a publish, the connection) may take before the run is declared failed.
FUTURE_TIMEOUT = 60.0
# Keep-alive of both clients, in seconds.
KEEP_ALIVE = 60


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


class Awscrt:
    """AWS's IoT Device SDK v2 for Python: awsiotsdk's connection builder on awscrt."""

    PACKAGES = ("awsiotsdk", "awscrt")

    def __init__(self, args):
        from awscrt import mqtt
        from awsiot import mqtt_connection_builder

        self.args = args
        self.builder = mqtt_connection_builder
        self.qos = {0: mqtt.QoS.AT_MOST_ONCE, 1: mqtt.QoS.AT_LEAST_ONCE}
        self.connection = None

    def connect(self):
        args = self.args
        if args.door == "websocket-sigv4":
            from awscrt import auth

            credentials = auth.AwsCredentialsProvider.new_static(
                args.access_key_id, args.secret_access_key)
            build = self.builder.websockets_with_default_aws_signing
            door = dict(region="us-east-1", credentials_provider=credentials)
        else:
            build = self.builder.mtls_from_path
            door = dict(cert_filepath=args.cert, pri_key_filepath=args.key)
        self.connection = build(
            endpoint=args.endpoint,
            port=args.port,
            **door,
            ca_filepath=args.ca,
            client_id=args.client_id,
            clean_session=True,
            keep_alive_secs=KEEP_ALIVE,
        )
        self.connection.connect().result(FUTURE_TIMEOUT)

    def publish(self, topic, payload, qos, count, window):
        """Publishes `count` messages, at most `window` undelivered; returns once all are."""
        qos = self.qos[qos]
        pending = collections.deque()
        for _ in range(count):
            if len(pending) >= window:
                pending.popleft().result(FUTURE_TIMEOUT)
            future, _ = self.connection.publish(topic, payload, qos)
            pending.append(future)
        while pending:
            pending.popleft().result(FUTURE_TIMEOUT)

    def disconnect(self):
        self.connection.disconnect().result(FUTURE_TIMEOUT)


class InFlight:
    """Publishes handed to paho and not yet delivered, and why the connection failed, if it did."""

    def __init__(self):
        self.condition = threading.Condition()
        self.count = 0
        self.failure = None

    def _wait_until(self, ready, what):
        if not self.condition.wait_for(lambda: ready() or self.failure, FUTURE_TIMEOUT):
            raise TimeoutError(f"{what}: nothing delivered for {FUTURE_TIMEOUT} s")
        if self.failure:
            raise ConnectionError(self.failure)

    def enter(self, window):
        """Waits for room in a window of `window` publishes and takes it."""
        with self.condition:
            self._wait_until(lambda: self.count < window, "waiting for room in the window")
            self.count += 1

    def leave(self):
        """One publish was delivered (called on paho's network thread)."""
        with self.condition:
            self.count -= 1
            self.condition.notify_all()

    def drain(self):
        """Waits until every publish is delivered."""
        with self.condition:
            self._wait_until(lambda: self.count == 0, "waiting for the last deliveries")

    def fail(self, why):
        with self.condition:
            self.failure = why
            self.condition.notify_all()


class Paho:
    """paho-mqtt's Client with its network thread (`loop_start`)."""

    PACKAGES = ("paho-mqtt",)

    def __init__(self, args):
        import ssl

        from paho.mqtt import client as paho

        self.args = args
        self.ssl = ssl
        self.paho = paho
        self.client = None
        self.in_flight = InFlight()
        self.connack = threading.Event()
        self.refused = None

    def connect(self):
        args, paho = self.args, self.paho
        if args.door != "mtls":
            raise ValueError(f"the paho client here connects over mutual TLS only, not {args.door}")
        context = self.ssl.create_default_context(cafile=args.ca)
        context.load_cert_chain(args.cert, args.key)
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=args.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        client.tls_set_context(context)
        client.max_inflight_messages_set(args.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        client.connect(args.endpoint, args.port, keepalive=KEEP_ALIVE)
        client.loop_start()
        if not self.connack.wait(FUTURE_TIMEOUT):
            raise TimeoutError(f"no CONNACK within {FUTURE_TIMEOUT} s")
        if self.refused is not None:
            raise ConnectionError(self.refused)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.refused = f"the broker refused the connection: {reason_code}"
        self.connack.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if not self.connack.is_set():
            # AWS IoT Core (and the emulator) close the connection instead of refusing it.
            self.refused = f"the broker closed the connection before CONNACK: {reason_code}"
            self.connack.set()
        self.in_flight.fail(f"connection lost: {reason_code}")

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.in_flight.leave()

    def publish(self, topic, payload, qos, count, window):
        """Publishes `count` messages, at most `window` undelivered; returns once all are."""
        for _ in range(count):
            self.in_flight.enter(window)
            info = self.client.publish(topic, payload, qos)
            if info.rc != self.paho.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"publish failed: {self.paho.error_string(info.rc)}")
        self.in_flight.drain()

    def disconnect(self):
        # A disconnect we asked for is no failure of a publish (none is left in flight).
        self.client.on_disconnect = None
        self.client.disconnect()
        self.client.loop_stop()


CLIENTS = {"awscrt": Awscrt, "paho": Paho}
MODES = ("pipelined", "sequential")


def parse_case(text):
    try:
        qos, size, mode, count = text.split(":")
        case = {"qos": int(qos), "size": int(size), "mode": mode, "count": int(count)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not QOS:SIZE:MODE:COUNT")
    if case["qos"] not in (0, 1) or mode not in MODES or case["count"] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: QOS is 0 or 1, MODE pipelined or sequential")
    return case


def vm_rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line in /proc/self/status")


def emit_versions(args, client):
    emit(
        "versions",
        client=args.client,
        python=platform.python_version(),
        packages=[[package, metadata.version(package)] for package in client.PACKAGES],
    )


def deliver(client, topic, case, window):
    """Runs one case; returns the seconds until the broker had every message."""
    payload = bytes(case["size"])
    start = time.perf_counter()
    client.publish(topic, payload, case["qos"], case["count"], window)
    if case["qos"] == 0:
        # A QoS 1 publish: its PUBACK comes after the broker has read everything sent before it.
        client.publish(topic, payload, 1, 1, 1)
    return time.perf_counter() - start


def run_cases(args, client):
    client.connect()
    emit("connected")
    try:
        if args.warm_up > 0:
            warm_up = {"qos": 1, "size": 64, "count": args.warm_up}
            deliver(client, args.topic, warm_up, args.window)
        for case in args.case:
            window = args.window if case["mode"] == "pipelined" else 1
            seconds = deliver(client, args.topic, case, window)
            emit(
                "result",
                qos=case["qos"],
                size=case["size"],
                mode=case["mode"],
                messages=case["count"],
                seconds=seconds,
                msgs_per_sec=case["count"] / seconds,
            )
    finally:
        client.disconnect()
    emit("done")


def measure_rss(args, client):
    before = vm_rss_kb()
    client.connect()
    time.sleep(args.idle)
    after = vm_rss_kb()
    client.disconnect()
    emit("rss", before_kb=before, after_kb=after)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--endpoint", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="client certificate (PEM file)")
    parser.add_argument("--key", required=True, help="client private key (PEM file)")
    parser.add_argument("--ca", required=True, help="root CA of the server (PEM file)")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--door", choices=("mtls", "websocket-sigv4"), default="mtls")
    parser.add_argument("--access-key-id", help="for --door websocket-sigv4")
    parser.add_argument("--secret-access-key", help="for --door websocket-sigv4")
    parser.add_argument("--topic", default="bench/python")
    parser.add_argument("--window", type=int, default=100, help="publishes in flight (pipelined)")
    parser.add_argument("--warm-up", type=int, default=0,
                        help="QoS 1 messages to publish before the cases (not measured)")
    parser.add_argument("--case", type=parse_case, action="append", default=[],
                        help="QOS:SIZE:MODE:COUNT, repeatable")
    parser.add_argument("--rss", action="store_true", help="measure idle memory instead")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds to idle (--rss)")
    args = parser.parse_args()
    if args.window < 1:
        parser.error("--window must be at least 1")
    try:
        client = CLIENTS[args.client](args)
        emit_versions(args, client)
        if args.rss:
            measure_rss(args, client)
        else:
            run_cases(args, client)
    except Exception as error:  # report any failure as an event the Rust side can show
        emit("error", message=f"{type(error).__name__}: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
