#!/usr/bin/env python3
"""A paho-mqtt (2.x) client with a persistent session that rides out lost connections, as a user's
long-running device or service would: MQTT 3.1.1, clean session off, QoS 1, paho's own automatic
reconnect (`loop_start`). Used by the emulator's crash tests (crates/cli/tests/durability.rs).

  --role publish    publishes `--count` messages to `--topic` (payload `<prefix>-<i>`), at most
                    `--inflight` unacknowledged; paho sends again what was not acknowledged when a
                    connection drops. Exits once every message was acknowledged (PUBACK).
  --role subscribe  subscribes to every `--filter` at QoS 1 on every connection whose CONNACK says
                    the broker has no session (a resumed session keeps its subscriptions), and
                    prints what arrives until `--timeout` or until it is killed; with `--no-ack` it
                    never acknowledges a message (they stay in flight at the broker).

Stdout, one JSON object per line, flushed at once:

  {"event": "connected", "session_present": true}
  {"event": "subscribed", "reasons": [1]}         (subscriber: SUBACK)
  {"event": "acked", "payload": "p-12"}           (publisher: PUBACK received)
  {"event": "received", "topic": "t", "payload": "p-12", "qos": 1, "retain": false, "dup": false}
  {"event": "done"}                               (publisher: every message acknowledged)

Exit status: 0 on success, 1 when the first connection fails, 2 when `--timeout` runs out first
(a subscriber's normal end).
"""

import argparse
import ssl
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from awsiot_pubsub import EXIT_FAILED, EXIT_TIMEOUT, Deadline, emit, payload_fields


class Durable:
    def __init__(self, args):
        self.args = args
        self.deadline = Deadline(args.timeout)
        self.cond = threading.Condition()
        self.acked = 0
        # mid -> payload of what awaits its PUBACK, and the mids acknowledged
        # before publish() returned them (paho may call on_publish first).
        self.payloads = {}
        self.early = set()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=args.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.max_inflight_messages_set(args.inflight)
        self.client.manual_ack_set(args.no_ack)
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self.client.on_connect = self.on_connect
        self.client.on_publish = self.on_publish
        self.client.on_message = self.on_message
        self.client.on_subscribe = self.on_subscribe

    def on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            return
        emit("connected", session_present=bool(flags.session_present))
        if self.args.role == "subscribe" and not flags.session_present:
            client.subscribe([(f, 1) for f in self.args.filter])

    def on_subscribe(self, client, userdata, mid, reasons, properties):
        emit("subscribed", reasons=[getattr(r, "value", r) for r in reasons])

    def on_publish(self, client, userdata, mid, reason, properties):
        with self.cond:
            payload = self.payloads.pop(mid, None)
            if payload is None:
                self.early.add(mid)
                return
            self.ack(payload)

    def ack(self, payload):
        """Counts an acknowledged message (the caller holds `cond`)."""
        self.acked += 1
        self.cond.notify_all()
        emit("acked", payload=payload)

    def on_message(self, client, userdata, message):
        emit(
            "received",
            topic=message.topic,
            **payload_fields(message.payload),
            qos=message.qos,
            retain=bool(message.retain),
            dup=bool(message.dup),
        )

    def run(self):
        args = self.args
        self.client.tls_set(
            ca_certs=args.ca,
            certfile=args.cert,
            keyfile=args.key,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        try:
            self.client.connect(args.host, args.port, keepalive=30)
        except Exception as e:  # noqa: BLE001 - any failure is reported the same way
            emit("error", stage="connect", message=str(e))
            return EXIT_FAILED
        self.client.loop_start()
        try:
            if args.role == "publish":
                return self.publish()
            with self.cond:
                self.cond.wait(timeout=self.deadline.remaining())
            return EXIT_TIMEOUT
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def publish(self):
        args = self.args
        for i in range(args.count):
            payload = f"{args.prefix}-{i}"
            with self.cond:
                # paho queues what is over its in-flight window; keep the queue short.
                if not self.cond.wait_for(
                    lambda: i - self.acked < 4 * args.inflight,
                    timeout=self.deadline.remaining(),
                ):
                    return EXIT_TIMEOUT
            # Not under `cond`: paho calls on_publish holding its own lock, which
            # publish() takes.
            info = self.client.publish(args.topic, payload, qos=1)
            with self.cond:
                if info.mid in self.early:
                    self.early.discard(info.mid)
                    self.ack(payload)
                else:
                    self.payloads[info.mid] = payload
        with self.cond:
            if not self.cond.wait_for(
                lambda: self.acked == args.count, timeout=self.deadline.remaining()
            ):
                return EXIT_TIMEOUT
        emit("done")
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--role", choices=["publish", "subscribe"], required=True)
    parser.add_argument("--topic", help="publisher: the topic")
    parser.add_argument("--prefix", default="paho", help="publisher: payload prefix")
    parser.add_argument("--count", type=int, default=0, help="publisher: messages")
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--filter", action="append", default=[], help="subscriber: a topic filter")
    parser.add_argument("--no-ack", action="store_true", help="subscriber: never send PUBACK")
    parser.add_argument("--timeout", type=float, default=60.0)
    sys.exit(Durable(parser.parse_args()).run())


if __name__ == "__main__":
    main()
