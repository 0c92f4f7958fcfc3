#!/usr/bin/env python3
"""A generic MQTT peer built on Eclipse paho-mqtt (2.x), a client nobody here wrote.

Used by the Rust integration tests (through iotcore-test-support's `run_peer` / `spawn_peer`) to
check that the emulator serves a widely used client the way the MQTT specification and AWS IoT
Core say: empty client ids (the server assigns one), shared subscriptions (`$share/<group>/...`).

Connects over mutual TLS (`--cert`, `--key`) or, with `--access-key-id` and
`--secret-access-key` (and `--session-token` for temporary credentials), over WebSocket to
`/mqtt` with a presigned SigV4 URL (signed by awscrt's signer as AWS's SDKs sign it: service
`iotdevicegateway`, the session token appended after signing; the `Host` paho sends, with the
port), with MQTT 3.1.1 (`--protocol 3`) or MQTT 5 (`--protocol 5`), then:

  1. subscribes to every `--subscribe` filter (at `--qos`) and waits for the SUBACK;
  2. publishes `--publish-count` messages to `--publish` (payload `--payload`, where `{i}` is the
     message's index counting from 0), waiting for each PUBACK at QoS 1;
  3. waits until `--expect` messages have arrived, then disconnects; with `--expect 0` it stays
     connected until it is killed or `--timeout` runs out (exit status 0 then), or, with
     `--leave`, disconnects at once.

An empty `--client-id` (the default) is sent as an empty client id: the broker assigns one.

Everything it sees is printed on stdout, one JSON object per line, flushed at once:

  {"event": "connected", "protocol": 5, "reason": 0, "session_present": false,
   "assigned_client_id": "$GEN/..."}        ("assigned_client_id": null when none was assigned)
  {"event": "refused", "reason": 133}       (CONNACK refused the connection)
  {"event": "subscribed", "filters": ["$share/g/t"], "reasons": [1]}
  {"event": "published", "topic": "t", "index": 0, "payload": "msg-0", "reason": 0}
                                             (at QoS 1 the PUBACK's reason code: MQTT 5
                                             0x97 = 151 for a throttled publish)
  {"event": "received", "topic": "t", "payload": "msg-0", "qos": 1, "retain": false}
                                             (not UTF-8: "payload": null, "payload_base64": ...)
  {"event": "disconnected", "reason": 142}   (the connection ended before the peer's own
                                             DISCONNECT; MQTT 5: the server's reason code)
  {"event": "error", "stage": "connect", "message": "..."}

Exit status: 0 on success, 1 when an operation fails or the connection is refused or lost, 2 when
`--timeout` runs out before `--expect` messages arrived.
"""

import argparse
import ssl
import sys
import threading

import paho.mqtt.client as mqtt
from awscrt import auth, http
from paho.mqtt.enums import CallbackAPIVersion

# The JSON-lines output and exit statuses every peer shares (emit is thread-safe).
from awsiot_pubsub import EXIT_FAILED, EXIT_TIMEOUT, Deadline, emit, payload_fields


def presigned_path(args):
    """`/mqtt?X-Amz-…`: the upgrade's path presigned for the Host paho sends."""
    host = args.host if args.port == 443 else f"{args.host}:{args.port}"
    request = http.HttpRequest("GET", "/mqtt", http.HttpHeaders([("host", host)]))
    config = auth.AwsSigningConfig(
        algorithm=auth.AwsSigningAlgorithm.V4,
        signature_type=auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS,
        credentials_provider=auth.AwsCredentialsProvider.new_static(
            args.access_key_id, args.secret_access_key, args.session_token),
        region=args.region,
        service="iotdevicegateway",
        omit_session_token=True,
    )
    auth.aws_sign_request(request, config).result(timeout=args.timeout)
    return request.path


def reason_value(reason):
    """The numeric value of a paho ReasonCode (or of a plain int)."""
    return getattr(reason, "value", reason)


class Peer:
    def __init__(self, args):
        self.args = args
        self.deadline = Deadline(args.timeout)
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.lost = threading.Event()
        self.closing = threading.Event()
        self.subacks = {}
        self.pubacks = {}
        self.cond = threading.Condition()
        self.received = 0
        protocol = mqtt.MQTTv5 if args.protocol == 5 else mqtt.MQTTv311
        kwargs = {}
        if args.protocol == 3:
            # MQTT 3.1.1 sets CleanSession here (paho itself refuses an empty client id
            # with CleanSession=0); MQTT 5 sets Clean Start in connect().
            kwargs["clean_session"] = not args.no_clean
        if args.access_key_id:
            kwargs["transport"] = "websockets"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=args.client_id,
            protocol=protocol,
            **kwargs,
        )
        if args.access_key_id:
            self.client.ws_set_options(path=presigned_path(args))
        self.client.on_connect = self.on_connect
        self.client.on_disconnect = self.on_disconnect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_publish = self.on_publish
        self.client.on_message = self.on_message

    # ----- paho callbacks (network thread) -----

    def on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            emit("refused", reason=reason_value(reason))
            self.refused.set()
            self.notify()
            return
        assigned = None
        if properties is not None and hasattr(properties, "AssignedClientIdentifier"):
            assigned = properties.AssignedClientIdentifier
        emit(
            "connected",
            protocol=self.args.protocol,
            reason=reason_value(reason),
            session_present=bool(flags.session_present),
            assigned_client_id=assigned,
        )
        self.connected.set()
        self.notify()

    def on_disconnect(self, client, userdata, flags, reason, properties):
        if self.closing.is_set():
            return
        emit("disconnected", reason=reason_value(reason))
        self.lost.set()
        self.notify()

    def on_subscribe(self, client, userdata, mid, reasons, properties):
        with self.cond:
            self.subacks[mid] = [reason_value(r) for r in reasons]
            self.cond.notify_all()

    def on_publish(self, client, userdata, mid, reason, properties):
        with self.cond:
            self.pubacks[mid] = reason_value(reason)
            self.cond.notify_all()

    def on_message(self, client, userdata, message):
        emit(
            "received",
            topic=message.topic,
            **payload_fields(message.payload),
            qos=message.qos,
            retain=bool(message.retain),
        )
        with self.cond:
            self.received += 1
            self.cond.notify_all()

    def notify(self):
        with self.cond:
            self.cond.notify_all()

    # ----- the run (main thread) -----

    def wait(self, predicate):
        """Waits for `predicate` (under the lock) or a lost connection; False on timeout."""
        with self.cond:
            return self.cond.wait_for(
                lambda: predicate() or self.lost.is_set(), timeout=self.deadline.remaining()
            )

    def run(self):
        args = self.args
        connect = {"keepalive": 30}
        if args.protocol == 5:
            connect["clean_start"] = not args.no_clean
        try:
            self.client.tls_set(
                ca_certs=args.ca,
                certfile=None if args.access_key_id else args.cert,
                keyfile=None if args.access_key_id else args.key,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            self.client.connect(args.host, args.port, **connect)
        except Exception as e:  # noqa: BLE001 - any failure is reported the same way
            emit("error", stage="connect", message=str(e))
            return EXIT_FAILED
        self.client.loop_start()
        try:
            return self.session()
        finally:
            if self.connected.is_set() and not self.lost.is_set():
                self.closing.set()
                self.client.disconnect()
            self.client.loop_stop()

    def session(self):
        args = self.args
        if not self.wait(lambda: self.connected.is_set() or self.refused.is_set()):
            emit("error", stage="connect", message="no CONNACK in time")
            return EXIT_TIMEOUT
        if not self.connected.is_set():
            return EXIT_FAILED
        if args.subscribe:
            result, mid = self.client.subscribe([(f, args.qos) for f in args.subscribe])
            if result != mqtt.MQTT_ERR_SUCCESS or not self.wait(lambda: mid in self.subacks):
                emit("error", stage="subscribe", message=f"no SUBACK (result {result})")
                return EXIT_FAILED
            emit("subscribed", filters=args.subscribe, reasons=self.subacks[mid])
        for i in range(args.publish_count):
            payload = args.payload.format(i=i)
            info = self.client.publish(args.publish, payload, qos=args.qos)
            if args.qos == 1 and not self.wait(lambda: info.mid in self.pubacks):
                emit("error", stage="publish", message=f"no PUBACK for message {i}")
                return EXIT_FAILED
            emit("published", topic=args.publish, index=i, payload=payload,
                 reason=self.pubacks.get(info.mid, 0))
        if args.expect == 0 and args.leave:
            return 0
        if args.expect == 0:
            self.wait(lambda: False)
            return EXIT_FAILED if self.lost.is_set() else 0
        if not self.wait(lambda: self.received >= args.expect):
            emit("error", stage="receive", message=f"{self.received} of {args.expect} received")
            return EXIT_TIMEOUT
        return EXIT_FAILED if self.received < args.expect else 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="host to connect to")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", help="client certificate (PEM file), for mutual TLS")
    p.add_argument("--key", help="client private key (PEM file), for mutual TLS")
    p.add_argument("--access-key-id", help="connect over WebSocket, presigned with this key")
    p.add_argument("--secret-access-key")
    p.add_argument("--session-token", help="temporary credentials' token")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--ca", required=True, help="CA certificate to trust (PEM file)")
    p.add_argument("--client-id", default="", help="client id (default: empty, assigned)")
    p.add_argument("--protocol", type=int, choices=(3, 5), default=5)
    p.add_argument("--no-clean", action="store_true",
                   help="CleanSession=0 (3.1.1) / Clean Start=0 (5)")
    p.add_argument("--subscribe", action="append", default=[], metavar="FILTER")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1)
    p.add_argument("--publish", metavar="TOPIC", help="topic to publish to")
    p.add_argument("--publish-count", type=int, default=0, metavar="K")
    p.add_argument("--payload", default="msg-{i}", help="payload template; {i} is the index")
    p.add_argument("--expect", type=int, default=0, metavar="K",
                   help="messages to receive before disconnecting (0: stay until killed)")
    p.add_argument("--leave", action="store_true",
                   help="with --expect 0: disconnect once published instead of staying")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S")
    args = p.parse_args(argv)
    if args.publish_count and not args.publish:
        p.error("--publish-count needs --publish")
    return args


if __name__ == "__main__":
    sys.exit(Peer(parse_args(sys.argv[1:])).run())
