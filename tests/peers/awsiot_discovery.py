#!/usr/bin/env python3
"""Greengrass discovery with AWS's IoT Device SDK v2 for Python (awsiot.greengrass_discovery).

Used by the emulator's integration test `crates/emulator/tests/greengrass.rs`: AWS's own
`DiscoveryClient` (the CRT's HTTP client over mutual TLS with the device's certificate) asks the
emulator which core devices the thing may connect to, as AWS's `basic_discovery` sample does.

The client offers ALPN `x-amzn-http-ca` (AWS's port 443) whenever the CRT has ALPN, which it has
on Linux; its port is then 443, so the test sets `client.port` to the emulator's (the MQTT port,
where that ALPN selects HTTPS, or the API port). `--server-name` is the host it connects to and the
name it checks the server certificate against (`gg_server_name`; `localhost` for the emulator).

With `--publish TOPIC`, it then does what the sample does next: tries each connectivity entry of
each core in order, over mutual TLS with the device's certificate, the group's CA (`CAs[0]`) as the
only trust anchor and the thing name as client id (`mtls_from_path`, persistent session, keep-alive
30 s), and on the first that connects publishes `--message` at QoS 1 to TOPIC and disconnects.

Usage: awsiot_discovery.py --port N --ca FILE --cert FILE --key FILE --thing NAME
                           [--server-name localhost] [--region us-east-1] [--timeout S]
                           [--publish TOPIC [--message TEXT]]

Prints one JSON object per line:
  {"event": "discovered", "alpn": true, "groups": [{"id": ..., "cores": [{"thing_arn": ...,
      "connectivity": [{"id", "host_address", "port", "metadata"}]}], "cas": [PEM, ...]}]}
  {"event": "connect_failed", "host": ..., "port": ..., "message": ...}   (--publish: tried the next)
  {"event": "published", "host": ..., "port": ..., "topic": ...}         (--publish: done)
  {"event": "refused", "http_response_code": 403}          (DiscoveryException)
  {"event": "error", "type": "...", "message": "..."}      (anything else, e.g. a closed connection)
Exit status: 0 when discovery answered 200 (and, with --publish, a core took the message),
1 otherwise.
"""

import argparse
import json
import sys

from awscrt import io, mqtt
from awsiot import mqtt_connection_builder
from awsiot.greengrass_discovery import DiscoveryClient, DiscoveryException


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--thing", required=True)
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--publish", metavar="TOPIC")
    parser.add_argument("--message", default="hello from a Greengrass client device")
    args = parser.parse_args()

    tls_options = io.TlsContextOptions.create_client_with_mtls_from_path(args.cert, args.key)
    tls_options.override_default_trust_store_from_path(None, args.ca)
    tls_context = io.ClientTlsContext(tls_options)
    socket_options = io.SocketOptions()
    client = DiscoveryClient(io.ClientBootstrap.get_or_create_static_default(), socket_options,
                             tls_context, args.region, gg_server_name=args.server_name)
    client.port = args.port
    try:
        response = client.discover(args.thing).result(args.timeout)
    except DiscoveryException as e:
        emit("refused", http_response_code=e.http_response_code, message=e.message)
        return 1
    except Exception as e:  # the CRT's errors: a closed connection, TLS, a timeout
        emit("error", type=type(e).__name__, message=str(e))
        return 1
    groups = [{
        "id": group.gg_group_id,
        "cores": [{
            "thing_arn": core.thing_arn,
            "connectivity": [{"id": c.id, "host_address": c.host_address, "port": c.port,
                              "metadata": c.metadata} for c in core.connectivity or []],
        } for core in group.cores or []],
        "cas": group.certificate_authorities or [],
    } for group in response.gg_groups or []]
    emit("discovered", alpn=io.is_alpn_available(), groups=groups)
    if args.publish is None:
        return 0
    return publish_through_a_core(args, response)


def publish_through_a_core(args, response):
    """The basic_discovery sample's loop: the first core address that connects takes the message."""
    for group in response.gg_groups or []:
        ca = group.certificate_authorities[0].encode()
        for core in group.cores or []:
            for info in core.connectivity or []:
                connection = mqtt_connection_builder.mtls_from_path(
                    endpoint=info.host_address, port=info.port, cert_filepath=args.cert,
                    pri_key_filepath=args.key, ca_bytes=ca, client_id=args.thing,
                    clean_session=False, keep_alive_secs=30)
                try:
                    connection.connect().result(args.timeout)
                except Exception as e:
                    emit("connect_failed", host=info.host_address, port=info.port, message=str(e))
                    continue
                publish, _ = connection.publish(args.publish, args.message, mqtt.QoS.AT_LEAST_ONCE)
                publish.result(args.timeout)
                emit("published", host=info.host_address, port=info.port, topic=args.publish)
                connection.disconnect().result(args.timeout)
                return 0
    emit("error", type="NoCore", message="no core address accepted the connection")
    return 1


if __name__ == "__main__":
    sys.exit(main())
