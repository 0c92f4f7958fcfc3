#!/usr/bin/env python3
"""A device's HTTPS publish with its client certificate, with Python's own `http.client` and
`ssl` (no AWS code): `POST /topics/TOPIC?qos=1` on AWS IoT Core's HTTPS port, authenticated by the
certificate alone, as AWS documents for devices that cannot keep an MQTT connection.

Used by `crates/emulator/tests/api.rs`. Prints one JSON line:
  {"event": "response", "status": 200, "error_type": null, "body": "..."}
Exit status 0 when a response arrived (whatever its status), 1 otherwise.
"""

import argparse
import http.client
import json
import ssl
import sys
import urllib.parse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--payload", default="")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--path", help="request this path instead of the topic's")
    parser.add_argument("--alpn", help="offer this ALPN protocol (x-amzn-http-ca: AWS's port 443)")
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    if args.alpn:
        context.set_alpn_protocols([args.alpn])
    path = args.path or "/topics/" + urllib.parse.quote(args.topic, safe="") + "?qos=1"
    connection = http.client.HTTPSConnection(args.host, args.port, context=context, timeout=30)
    try:
        body = args.payload.encode() if args.method == "POST" else None
        connection.request(args.method, path, body=body)
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - any failure is reported as an event
        print(json.dumps({"event": "error", "message": str(e)}), flush=True)
        return 1
    print(json.dumps({
        "event": "response",
        "status": response.status,
        "error_type": response.getheader("x-amzn-ErrorType"),
        "body": text,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
