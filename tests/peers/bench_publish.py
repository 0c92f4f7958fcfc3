#!/usr/bin/env python3
"""Publish throughput of AWS's IoT Device SDK v2 for Python (awsiotsdk on awscrt), for the
`throughput` benchmark of crates/device (crates/device/benches/throughput).

Connects over mutual TLS with `mqtt_connection_builder.mtls_from_path` (MQTT 3.1.1, clean
session), publishes `--warm-up` QoS 1 messages (not measured), then runs each `--case` once and
prints one JSON object per line on stdout:

  {"event": "versions", "awsiotsdk": "...", "awscrt": "...", "python": "..."}
  {"event": "connected"}
  {"event": "result", "qos": 1, "size": 64, "mode": "pipelined", "messages": N,
   "seconds": S, "msgs_per_sec": R}
  {"event": "done"}

A case is `QOS:SIZE:MODE:COUNT`:
  * `pipelined`: keep up to `--window` publishes in flight, waiting for the oldest publish
    future when the window is full (at QoS 1 it completes on PUBACK, at QoS 0 when written);
  * `sequential`: wait for each publish future before the next.
At QoS 0 the timing ends with a final QoS 1 publish (not counted) whose PUBACK says that the
broker has read everything before it, so "delivered" means received by the broker.

With `--rss`, instead: prints {"event": "rss", "before_kb": A, "after_kb": B} with this
process's VmRSS after the imports and after connecting and idling for `--idle` seconds.

On failure prints {"event": "error", "message": "..."} and exits with status 1.
"""

import argparse
import collections
import json
import platform
import sys
import time
from importlib import metadata

from awscrt import mqtt
from awsiot import mqtt_connection_builder

QOS = {0: mqtt.QoS.AT_MOST_ONCE, 1: mqtt.QoS.AT_LEAST_ONCE}
# Seconds any single future may take before the run is declared failed.
FUTURE_TIMEOUT = 60.0


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def parse_case(text):
    try:
        qos, size, mode, count = text.split(":")
        case = {"qos": int(qos), "size": int(size), "mode": mode, "count": int(count)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not QOS:SIZE:MODE:COUNT")
    if case["qos"] not in QOS or mode not in ("pipelined", "sequential") or case["count"] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: QOS is 0 or 1, MODE pipelined or sequential")
    return case


def vm_rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line in /proc/self/status")


def connect(args):
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=args.endpoint,
        port=args.port,
        cert_filepath=args.cert,
        pri_key_filepath=args.key,
        ca_filepath=args.ca,
        client_id=args.client_id,
        clean_session=True,
        keep_alive_secs=60,
    )
    connection.connect().result(FUTURE_TIMEOUT)
    return connection


def barrier(connection, topic, payload):
    """A QoS 1 publish: its PUBACK comes after the broker has read everything sent before it."""
    future, _ = connection.publish(topic, payload, mqtt.QoS.AT_LEAST_ONCE)
    future.result(FUTURE_TIMEOUT)


def pipelined(connection, topic, payload, qos, count, window):
    pending = collections.deque()
    start = time.perf_counter()
    for _ in range(count):
        if len(pending) >= window:
            pending.popleft().result(FUTURE_TIMEOUT)
        future, _ = connection.publish(topic, payload, qos)
        pending.append(future)
    while pending:
        pending.popleft().result(FUTURE_TIMEOUT)
    if qos == mqtt.QoS.AT_MOST_ONCE:
        barrier(connection, topic, payload)
    return time.perf_counter() - start


def sequential(connection, topic, payload, qos, count):
    start = time.perf_counter()
    for _ in range(count):
        future, _ = connection.publish(topic, payload, qos)
        future.result(FUTURE_TIMEOUT)
    if qos == mqtt.QoS.AT_MOST_ONCE:
        barrier(connection, topic, payload)
    return time.perf_counter() - start


def run_cases(args):
    emit(
        "versions",
        awsiotsdk=metadata.version("awsiotsdk"),
        awscrt=metadata.version("awscrt"),
        python=platform.python_version(),
    )
    connection = connect(args)
    emit("connected")
    try:
        if args.warm_up > 0:
            pipelined(connection, args.topic, bytes(64), mqtt.QoS.AT_LEAST_ONCE, args.warm_up,
                      args.window)
        for case in args.case:
            payload = bytes(case["size"])
            qos = QOS[case["qos"]]
            if case["mode"] == "pipelined":
                seconds = pipelined(connection, args.topic, payload, qos, case["count"], args.window)
            else:
                seconds = sequential(connection, args.topic, payload, qos, case["count"])
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
        connection.disconnect().result(FUTURE_TIMEOUT)
    emit("done")


def measure_rss(args):
    before = vm_rss_kb()
    connection = connect(args)
    time.sleep(args.idle)
    after = vm_rss_kb()
    connection.disconnect().result(FUTURE_TIMEOUT)
    emit("rss", before_kb=before, after_kb=after)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="client certificate (PEM file)")
    parser.add_argument("--key", required=True, help="client private key (PEM file)")
    parser.add_argument("--ca", required=True, help="root CA of the server (PEM file)")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--topic", default="bench/python")
    parser.add_argument("--window", type=int, default=100, help="publishes in flight (pipelined)")
    parser.add_argument("--warm-up", type=int, default=0,
                        help="QoS 1 messages to publish before the cases (not measured)")
    parser.add_argument("--case", type=parse_case, action="append", default=[],
                        help="QOS:SIZE:MODE:COUNT, repeatable")
    parser.add_argument("--rss", action="store_true", help="measure idle memory instead")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds to idle (--rss)")
    args = parser.parse_args()
    try:
        if args.rss:
            measure_rss(args)
        else:
            run_cases(args)
    except Exception as error:  # report any failure as an event the Rust side can show
        emit("error", message=f"{type(error).__name__}: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
