#!/usr/bin/env python3
"""A fleet provisioning peer built on AWS's IoT Device SDK v2 for Python (awsiot.iotidentity).

Used by the emulator's integration tests (through iotcore-test-support's `spawn_peer`) to check
that AWS's own identity clients provision a device against the emulator.

Connects with a claim certificate like awsiot_pubsub.py (mutual TLS; `--protocol 3` for MQTT
3.1.1, `5` for MQTT 5), then, with one of the SDK's two identity clients:

  --client v1   `IotIdentityClient`: subscribes to the exact accepted/rejected topics of each
                API once, then publishes the requests;
  --client v2   `IotIdentityClientV2`: the request-response client (subscribes around each
                request, returns a future, raises V2ServiceException for a rejection).

The scenario:

  1. `--csr FILE`: CreateCertificateFromCsr with that CSR (the key stays with the test);
     without it: CreateKeysAndCertificate                     → accepted
  2. RegisterThing with `--template` and each `--param NAME=VALUE` → accepted
  3. RegisterThing again with the same ownership token         → rejected
  4. write the certificate to `--out-cert` (and, from CreateKeysAndCertificate, the key to
     `--out-key`)

Events, one JSON object per line on stdout:

  {"event": "connected", "protocol": 3, "session_present": false}
  {"event": "created", "api": "csr"|"keys", "certificate_id": "...", "has_private_key": bool}
  {"event": "registered", "thing_name": "...", "device_configuration": {...}}
  {"event": "rejected", "status_code": 400, "error_code": "...", "error_message": "..."}
  {"event": "disconnected"}
  {"event": "error", "stage": "...", "message": "..."}

Exit status: 0 when every step got the reply above, 1 otherwise, 2 when `--timeout` runs out.
"""

import argparse
import queue
import sys

from awscrt import mqtt, mqtt_request_response
import awsiot
from awsiot import iotidentity

from awsiot_pubsub import (EXIT_TIMEOUT, Failed, emit, main, open_service_peer,
                           parse_service_peer_args, service_peer_parser)


class Rejected(Exception):
    """A modeled rejection: the service's ErrorResponse."""

    def __init__(self, response):
        super().__init__(response.error_code)
        self.response = response


class IdentityV1:
    """`IotIdentityClient`: exact subscriptions made once per API, replies taken by topic."""

    def __init__(self, protocol_client, template, deadline):
        self.client = iotidentity.IotIdentityClient(protocol_client)
        self.template = template
        self.deadline = deadline
        self.replies = queue.Queue()

    def _subscribe(self, api, request):
        qos = mqtt.QoS.AT_LEAST_ONCE
        for outcome in ("accepted", "rejected"):
            subscribe = getattr(self.client, f"subscribe_to_{api}_{outcome}")
            future, _ = subscribe(request, qos, lambda r, o=outcome: self.replies.put((o, r)))
            self.deadline.wait_future(future, f"subscribe {api}/{outcome}")

    def start(self):
        self._subscribe("create_certificate_from_csr",
                        iotidentity.CreateCertificateFromCsrSubscriptionRequest())
        self._subscribe("create_keys_and_certificate",
                        iotidentity.CreateKeysAndCertificateSubscriptionRequest())
        self._subscribe("register_thing",
                        iotidentity.RegisterThingSubscriptionRequest(template_name=self.template))

    def _request(self, api, request):
        publish = getattr(self.client, f"publish_{api}")
        self.deadline.wait_future(publish(request, mqtt.QoS.AT_LEAST_ONCE), f"publish {api}")
        try:
            outcome, response = self.replies.get(timeout=self.deadline.remaining())
        except queue.Empty as e:
            raise Failed(api, "no reply in time", EXIT_TIMEOUT) from e
        if outcome == "rejected":
            raise Rejected(response)
        return response

    def create_certificate_from_csr(self, csr):
        return self._request("create_certificate_from_csr",
                             iotidentity.CreateCertificateFromCsrRequest(
                                 certificate_signing_request=csr))

    def create_keys_and_certificate(self):
        return self._request("create_keys_and_certificate",
                             iotidentity.CreateKeysAndCertificateRequest())

    def register_thing(self, token, parameters):
        return self._request("register_thing", iotidentity.RegisterThingRequest(
            template_name=self.template, certificate_ownership_token=token,
            parameters=parameters))


class IdentityV2:
    """`IotIdentityClientV2`: futures, rejections raised as V2ServiceException."""

    def __init__(self, protocol_client, template, deadline):
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2, max_streaming_subscriptions=0,
            operation_timeout_in_seconds=max(1, int(deadline.remaining())))
        self.client = iotidentity.IotIdentityClientV2(protocol_client, options)
        self.template = template
        self.deadline = deadline

    def start(self):
        pass

    def _wait(self, api, future):
        try:
            return future.result(timeout=self.deadline.remaining())
        except awsiot.V2ServiceException as e:
            if e.modeled_error is None:
                raise Failed(api, f"{e.message}: {e.inner_error}") from e
            raise Rejected(e.modeled_error) from e
        except TimeoutError as e:
            raise Failed(api, "no reply in time", EXIT_TIMEOUT) from e

    def create_certificate_from_csr(self, csr):
        return self._wait("create_certificate_from_csr", self.client.create_certificate_from_csr(
            iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request=csr)))

    def create_keys_and_certificate(self):
        return self._wait("create_keys_and_certificate", self.client.create_keys_and_certificate(
            iotidentity.CreateKeysAndCertificateRequest()))

    def register_thing(self, token, parameters):
        return self._wait("register_thing", self.client.register_thing(
            iotidentity.RegisterThingRequest(template_name=self.template,
                                             certificate_ownership_token=token,
                                             parameters=parameters)))


def scenario(identity, args):
    identity.start()
    try:
        if args.csr:
            with open(args.csr, encoding="ascii") as f:
                created = identity.create_certificate_from_csr(f.read())
            private_key = None
        else:
            created = identity.create_keys_and_certificate()
            private_key = created.private_key
    except Rejected as e:
        raise Failed("create", f"rejected: {e.response.error_code} {e.response.error_message}")
    emit("created", api="csr" if args.csr else "keys", certificate_id=created.certificate_id,
         has_private_key=private_key is not None)
    parameters = dict(args.param)
    try:
        registered = identity.register_thing(created.certificate_ownership_token, parameters)
    except Rejected as e:
        raise Failed("register", f"rejected: {e.response.error_code} {e.response.error_message}")
    emit("registered", thing_name=registered.thing_name,
         device_configuration=registered.device_configuration)
    try:
        identity.register_thing(created.certificate_ownership_token, parameters)
    except Rejected as e:
        emit("rejected", status_code=e.response.status_code, error_code=e.response.error_code,
             error_message=e.response.error_message)
    else:
        raise Failed("register again", "a used ownership token was accepted")
    with open(args.out_cert, "w", encoding="ascii") as f:
        f.write(created.certificate_pem)
    if private_key is not None and args.out_key:
        with open(args.out_key, "w", encoding="ascii") as f:
            f.write(private_key)


def parse_param(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def parse_args(argv):
    p = service_peer_parser(__doc__.split("\n\n")[0],
                            "v1 = IotIdentityClient, v2 = IotIdentityClientV2",
                            certificate="claim")
    p.add_argument("--template", required=True, help="the provisioning template")
    p.add_argument("--param", type=parse_param, action="append", default=[],
                   metavar="NAME=VALUE", help="a template parameter")
    p.add_argument("--csr", help="a PEM CSR file: use CreateCertificateFromCsr")
    p.add_argument("--out-cert", required=True, help="where to write the new certificate")
    p.add_argument("--out-key", help="where to write the key CreateKeysAndCertificate returns")
    return parse_service_peer_args(p, argv)


def run(args):
    deadline, peer, client = open_service_peer(args)
    identity_class = IdentityV2 if args.client == "v2" else IdentityV1
    scenario(identity_class(client, args.template, deadline), args)
    peer.disconnect()
    emit("disconnected")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], parse_args, run))
