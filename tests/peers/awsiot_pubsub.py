#!/usr/bin/env python3
"""A generic MQTT peer built on AWS's IoT Device SDK v2 for Python (awsiotsdk on awscrt).

Used by the Rust integration tests (through iotcore-test-support's `run_peer` / `spawn_peer`) to
check that a client we did not write can talk to the broker under test (Mosquitto, or the
iotcore emulator).

Connects with `awsiot.mqtt_connection_builder` for MQTT 3.1.1 (`--protocol 3`) or
`awsiot.mqtt5_client_builder` for MQTT 5 (`--protocol 5`), through the door `--door` names:

  mtls                   `mtls_from_path`: mutual TLS with `--cert` and `--key` (the default);
  websocket-sigv4        `websockets_with_default_aws_signing`: MQTT over WebSocket, the handshake
                         presigned with `--access-key-id`, `--secret-access-key` and, for temporary
                         credentials, `--session-token` (region `--region`);
  custom-auth            `direct_with_custom_authorizer`: ALPN `mqtt`, the authorizer's name, the
                         token and its signature in the username (`--authorizer-name`,
                         `--token-key-name`, `--token`, `--token-signature`, `--auth-username`,
                         `--auth-password`);
  websocket-custom-auth  `websockets_with_custom_authorizer`: the same over an unsigned WebSocket.

The MQTT 3.1.1 `direct_with_custom_authorizer` always connects to port 443; this script puts
`--port` back (and changes nothing else the builder does), so that it can reach a test server.

Then:

  1. with `--subscribe-first`, subscribes to `--subscribe-topic` (default: `--topic`);
  2. publishes `--publish-count` messages to `--topic` (payload `--payload`, where `{i}` is the
     message's index counting from 0), waiting for each PUBACK at QoS 1;
  3. without `--subscribe-first` but with `--expect` > 0, subscribes now;
  4. waits until `--expect` messages have arrived (on any topic: messages of a resumed session
     count too), then disconnects.

Everything it sees is printed on stdout, one JSON object per line, flushed at once:

  {"event": "connected", "protocol": 3, "session_present": false}
  {"event": "subscribed", "topic": "t/1", "qos": 1}
  {"event": "published", "topic": "t/1", "index": 0, "payload": "msg-0", "qos": 1}
  {"event": "received", "topic": "t/1", "payload": "msg-0", "qos": 1, "retain": false,
   "dup": false}                             ("dup" with MQTT 3.1.1 only: awscrt hides it in 5)
  {"event": "interrupted", "error": "..."}   (the connection dropped while in use)
  {"event": "disconnected"}                  (the final, orderly disconnect)
  {"event": "error", "stage": "connect", "message": "..."}

A payload that is not UTF-8 is printed as `"payload": null, "payload_base64": "..."`.
Exit status: 0 on success, 1 when an operation fails, 2 when `--timeout` runs out first.
The time limit covers the whole run.
"""

import argparse
import base64
import json
import sys
import threading
import time

from awscrt import auth, mqtt, mqtt5
from awsiot import mqtt5_client_builder, mqtt_connection_builder

EXIT_FAILED = 1
EXIT_TIMEOUT = 2

_print_lock = threading.Lock()


def emit(event, **fields):
    """Prints one event as a JSON line (callbacks run on CRT threads, hence the lock)."""
    line = json.dumps({"event": event, **fields})
    with _print_lock:
        print(line, flush=True)


def payload_fields(payload):
    payload = bytes(payload)
    try:
        return {"payload": payload.decode("utf-8")}
    except UnicodeDecodeError:
        return {"payload": None, "payload_base64": base64.b64encode(payload).decode("ascii")}


class Failed(Exception):
    """An operation failed; `stage` says which one."""

    def __init__(self, stage, message, exit_code=EXIT_FAILED):
        super().__init__(message)
        self.stage = stage
        self.exit_code = exit_code


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def wait_future(self, future, stage):
        """Waits for a concurrent.futures.Future, turning its failure into Failed."""
        try:
            return future.result(timeout=self.remaining())
        except TimeoutError as e:
            # concurrent.futures.TimeoutError is the builtin TimeoutError since Python 3.11.
            raise Failed(stage, f"timed out after {self.seconds} s", EXIT_TIMEOUT) from e
        except Exception as e:  # noqa: BLE001 - any SDK error is reported, not raised
            raise Failed(stage, f"{type(e).__name__}: {e}") from e


class Inbox:
    """Counts received messages and lets the main thread wait for a number of them."""

    def __init__(self):
        self.count = 0
        self.cond = threading.Condition()

    def add(self, topic, payload, qos, retain, dup=None):
        fields = dict(topic=topic, **payload_fields(payload), qos=int(qos), retain=bool(retain))
        if dup is not None:
            fields["dup"] = bool(dup)
        emit("received", **fields)
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait_for(self, expected, deadline):
        with self.cond:
            if not self.cond.wait_for(lambda: self.count >= expected, timeout=deadline.remaining()):
                raise Failed("receive",
                             f"timed out after {deadline.seconds} s waiting for {expected} "
                             f"messages; received {self.count}", EXIT_TIMEOUT)


def door_builder(builders, args):
    """The builder function of `builders` (mqtt_connection_builder or mqtt5_client_builder) for
    `args.door` (mutual TLS for scripts without that option), and the arguments it takes besides
    the common ones."""
    door = getattr(args, "door", "mtls")
    if door == "mtls":
        return builders.mtls_from_path, dict(cert_filepath=args.cert, pri_key_filepath=args.key)
    if door == "websocket-sigv4":
        credentials = auth.AwsCredentialsProvider.new_static(
            args.access_key_id, args.secret_access_key, args.session_token)
        return builders.websockets_with_default_aws_signing, dict(
            region=args.region, credentials_provider=credentials)
    custom = dict(
        auth_username=args.auth_username,
        auth_authorizer_name=args.authorizer_name,
        auth_authorizer_signature=args.token_signature,
        auth_password=args.auth_password,
        auth_token_key_name=args.token_key_name,
        auth_token_value=args.token,
    )
    if door == "custom-auth":
        return builders.direct_with_custom_authorizer, custom
    return builders.websockets_with_custom_authorizer, custom


def keep_port(port):
    """The MQTT 3.1.1 direct_with_custom_authorizer sets port 443 before calling the builder's
    `_builder`; this puts `port` back for the one call and changes nothing else."""
    original = mqtt_connection_builder._builder

    def with_port(**kwargs):
        kwargs["port"] = port
        return original(**kwargs)

    mqtt_connection_builder._builder = with_port
    return original


class Mqtt3Peer:
    """MQTT 3.1.1 through awscrt.mqtt.Connection."""

    def __init__(self, args, inbox, deadline):
        self.deadline = deadline
        build, door_args = door_builder(mqtt_connection_builder, args)
        original = keep_port(args.port) if getattr(args, "door", "mtls") == "custom-auth" else None
        try:
            self.connection = build(
                **door_args,
                endpoint=args.endpoint,
                port=args.port,
                ca_filepath=args.ca,
                client_id=args.client_id,
                clean_session=not args.persistent,
                keep_alive_secs=args.keep_alive,
                on_connection_interrupted=self._on_interrupted,
            )
        finally:
            if original is not None:
                mqtt_connection_builder._builder = original
        # Every incoming PUBLISH, including those of a resumed session that has no callback.
        self.connection.on_message(
            lambda topic, payload, dup, qos, retain, **_: inbox.add(topic, payload, qos, retain, dup))

    @staticmethod
    def _on_interrupted(connection, error, **_):
        emit("interrupted", error=str(error))

    def connect(self):
        result = self.deadline.wait_future(self.connection.connect(), "connect")
        emit("connected", protocol=3, session_present=bool(result["session_present"]))

    def subscribe(self, topic, qos):
        future, _ = self.connection.subscribe(topic, qos_of(mqtt.QoS, qos))
        result = self.deadline.wait_future(future, "subscribe")
        emit("subscribed", topic=topic, qos=int(result["qos"]))

    def publish(self, topic, payload, qos):
        future, _ = self.connection.publish(topic, payload, qos_of(mqtt.QoS, qos))
        self.deadline.wait_future(future, "publish")

    def disconnect(self):
        self.deadline.wait_future(self.connection.disconnect(), "disconnect")


class Mqtt5Peer:
    """MQTT 5 through awscrt.mqtt5.Client."""

    def __init__(self, args, inbox, deadline):
        self.deadline = deadline
        self.inbox = inbox
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.stopped = threading.Event()
        self.connack = None
        self.connect_error = None
        build, door_args = door_builder(mqtt5_client_builder, args)
        self.client = build(
            **door_args,
            endpoint=args.endpoint,
            port=args.port,
            ca_filepath=args.ca,
            client_id=args.client_id,
            keep_alive_interval_sec=args.keep_alive,
            session_behavior=(mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS if args.persistent
                              else mqtt5.ClientSessionBehaviorType.CLEAN),
            session_expiry_interval_sec=args.session_expiry if args.persistent else None,
            on_publish_received=self._on_publish,
            on_lifecycle_connection_success=self._on_success,
            on_lifecycle_connection_failure=self._on_failure,
            on_lifecycle_disconnection=self._on_disconnection,
            on_lifecycle_stopped=lambda _data: self.stopped.set(),
        )

    def _on_publish(self, data):
        packet = data.publish_packet
        # awscrt does not expose the DUP flag of an incoming MQTT 5 PUBLISH.
        self.inbox.add(packet.topic, packet.payload, packet.qos, packet.retain)

    def _on_success(self, data):
        self.connack = data.connack_packet
        self.connected.set()

    def _on_failure(self, data):
        reason = data.connack_packet.reason_code if data.connack_packet else None
        self.connect_error = f"{data.exception} (CONNACK reason: {reason})"
        self.connected.set()

    def _on_disconnection(self, data):
        if self.connected.is_set() and self.connect_error is None and not self.stopping.is_set():
            reason = data.disconnect_packet.reason_code if data.disconnect_packet else None
            emit("interrupted", error=str(data.exception), disconnect_reason=str(reason))

    def connect(self):
        self.client.start()
        if not self.connected.wait(timeout=self.deadline.remaining()):
            raise Failed("connect", f"timed out after {self.deadline.seconds} s", EXIT_TIMEOUT)
        if self.connect_error is not None:
            raise Failed("connect", self.connect_error)
        emit("connected", protocol=5, session_present=bool(self.connack.session_present))

    def subscribe(self, topic, qos):
        packet = mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=topic, qos=qos_of(mqtt5.QoS, qos))])
        suback = self.deadline.wait_future(self.client.subscribe(packet), "subscribe")
        code = suback.reason_codes[0]
        if int(code) >= 0x80:
            raise Failed("subscribe", f"SUBACK refused {topic!r}: {code!r}")
        emit("subscribed", topic=topic, qos=int(code))

    def publish(self, topic, payload, qos):
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=qos_of(mqtt5.QoS, qos))
        completion = self.deadline.wait_future(self.client.publish(packet), "publish")
        puback = completion.puback
        if qos == 1 and puback is not None and puback.reason_code is not None \
                and int(puback.reason_code) >= 0x80:
            raise Failed("publish", f"PUBACK refused the message: {puback.reason_code!r}")

    def disconnect(self):
        self.stopping.set()
        self.client.stop()
        if not self.stopped.wait(timeout=self.deadline.remaining()):
            raise Failed("disconnect", f"timed out after {self.deadline.seconds} s", EXIT_TIMEOUT)


def qos_of(enum, qos):
    return enum.AT_LEAST_ONCE if qos == 1 else enum.AT_MOST_ONCE


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", default="127.0.0.1", help="host to connect to")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--door", default="mtls",
                   choices=("mtls", "websocket-sigv4", "custom-auth", "websocket-custom-auth"),
                   help="how to connect and authenticate (see above)")
    p.add_argument("--cert", help="client certificate (PEM file), for --door mtls")
    p.add_argument("--key", help="client private key (PEM file), for --door mtls")
    p.add_argument("--ca", required=True, help="CA certificate to trust (PEM file)")
    p.add_argument("--access-key-id", help="for --door websocket-sigv4")
    p.add_argument("--secret-access-key", help="for --door websocket-sigv4")
    p.add_argument("--session-token", help="temporary credentials' token (websocket-sigv4)")
    p.add_argument("--region", default="us-east-1", help="signing region (websocket-sigv4)")
    p.add_argument("--authorizer-name", help="custom authorizer (custom-auth doors)")
    p.add_argument("--token-key-name", help="the authorizer's token key name")
    p.add_argument("--token", help="the token")
    p.add_argument("--token-signature", help="the token's signature (base64)")
    p.add_argument("--auth-username", help="username passed to the authorizer")
    p.add_argument("--auth-password", help="password passed to the authorizer")
    p.add_argument("--client-id", required=True)
    p.add_argument("--protocol", type=int, choices=(3, 5), default=3,
                   help="3 = MQTT 3.1.1, 5 = MQTT 5")
    p.add_argument("--topic", required=True, help="topic to publish to (and subscribe to)")
    p.add_argument("--subscribe-topic", help="topic filter to subscribe to (default: --topic)")
    p.add_argument("--subscribe-first", action="store_true",
                   help="subscribe before publishing (to receive one's own messages)")
    p.add_argument("--publish-count", type=int, default=0, metavar="K")
    p.add_argument("--payload", default="msg-{i}", help="payload template; {i} is the index")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1)
    p.add_argument("--expect", type=int, default=0, metavar="K",
                   help="number of messages to wait for before disconnecting")
    p.add_argument("--persistent", action="store_true",
                   help="ask for a persistent session (MQTT 3: clean session off; MQTT 5: "
                        "rejoin, with --session-expiry)")
    p.add_argument("--session-expiry", type=int, default=3600, metavar="S",
                   help="MQTT 5 session expiry interval with --persistent")
    p.add_argument("--keep-alive", type=int, default=30, metavar="S")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="time limit for the whole run")
    return p.parse_args(argv)


def open_peer(args, inbox, deadline):
    """Builds the MQTT 3.1.1 or 5 peer that `args.protocol` names and connects it; bad files
    and options are a "setup" failure."""
    peer_class = Mqtt5Peer if args.protocol == 5 else Mqtt3Peer
    try:
        peer = peer_class(args, inbox, deadline)
    except Exception as e:  # noqa: BLE001 - bad files and options are reported as events
        raise Failed("setup", f"{type(e).__name__}: {e}") from e
    peer.connect()
    return peer


def protocol_client(peer, args):
    """What awsiot's service clients are built on: the MQTT 5 client or the 3.1.1 connection."""
    return peer.client if args.protocol == 5 else peer.connection


def service_peer_parser(description, client_help, certificate="client"):
    """The arguments of the peers built on AWS's service clients (shadow, jobs, provisioning):
    where to connect, as whom, which MQTT version and which of the SDK's two clients
    (`client_help` says which); the caller adds its own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--endpoint", default="127.0.0.1", help="host to connect to")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True, help=f"{certificate} certificate (PEM file)")
    p.add_argument("--key", required=True, help=f"{certificate} private key (PEM file)")
    p.add_argument("--ca", required=True, help="CA certificate to trust (PEM file)")
    p.add_argument("--client-id", required=True)
    p.add_argument("--protocol", type=int, choices=(3, 5), default=3,
                   help="3 = MQTT 3.1.1, 5 = MQTT 5")
    p.add_argument("--client", choices=("v1", "v2"), default="v2", help=client_help)
    p.add_argument("--keep-alive", type=int, default=30, metavar="S")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="time limit for the whole run")
    return p


def parse_service_peer_args(parser, argv):
    """Parses `argv`; a service peer uses a clean session."""
    args = parser.parse_args(argv)
    args.persistent = False
    args.session_expiry = None
    return args


def open_service_peer(args):
    """Connects as `args` say; returns the deadline of the run, the peer and what the
    service clients are built on."""
    deadline = Deadline(args.timeout)
    peer = open_peer(args, Inbox(), deadline)
    return deadline, peer, protocol_client(peer, args)


def run(args):
    deadline = Deadline(args.timeout)
    inbox = Inbox()
    peer = open_peer(args, inbox, deadline)
    subscribe_topic = args.subscribe_topic or args.topic
    if args.subscribe_first:
        peer.subscribe(subscribe_topic, args.qos)
    for i in range(args.publish_count):
        payload = args.payload.replace("{i}", str(i))
        peer.publish(args.topic, payload, args.qos)
        emit("published", topic=args.topic, index=i, payload=payload, qos=args.qos)
    if args.expect > 0 and not args.subscribe_first:
        peer.subscribe(subscribe_topic, args.qos)
    inbox.wait_for(args.expect, deadline)
    peer.disconnect()
    emit("disconnected")


def main(argv, parse_args, run):
    """Parses `argv` with `parse_args` and runs `run(args)`: 0 when it succeeds; on `Failed`, an
    "error" event and the failure's exit code. Every peer script ends with this."""
    args = parse_args(argv)
    try:
        run(args)
    except Failed as e:
        emit("error", stage=e.stage, message=str(e))
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], parse_args, run))
