#!/usr/bin/env python3
"""Greengrass discovery with AWS's IoT Device SDK v2 for Python (awsiot.greengrass_discovery).

Used by the emulator's integration test `crates/emulator/tests/greengrass.rs`: AWS's own
`DiscoveryClient` (the CRT's HTTP client over mutual TLS with the device's certificate) asks the
emulator which core devices the thing may connect to, as AWS's `basic_discovery` sample does.

The client offers ALPN `x-amzn-http-ca` (AWS's port 443) whenever the CRT has ALPN, which it has
on Linux; its port is then 443, so the test sets `client.port` to the emulator's (the MQTT port,
where that ALPN selects HTTPS, or the API port). `--server-name` is the host it connects to and the
name it checks the server certificate against (`gg_server_name`; `localhost` for the emulator).

Usage: awsiot_discovery.py --port N --ca FILE --cert FILE --key FILE --thing NAME
                           [--server-name localhost] [--region us-east-1] [--timeout S]

Prints one JSON object per line:
  {"event": "discovered", "alpn": true, "groups": [{"id": ..., "cores": [{"thing_arn": ...,
      "connectivity": [{"id", "host_address", "port", "metadata"}]}], "cas": [PEM, ...]}]}
  {"event": "refused", "http_response_code": 403}          (DiscoveryException)
  {"event": "error", "type": "...", "message": "..."}      (anything else, e.g. a closed connection)
Exit status: 0 when discovery answered 200, 1 otherwise.
"""

import argparse
import json
import sys

from awscrt import io
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
