#!/usr/bin/env python3
"""botocore (boto3) as a peer of the emulator's HTTPS API server.

Used by the emulator's unit tests of `api::server` (module `server/tests.rs`), which run the
server with an echo handler: botocore signs the requests (SigV4, the real client's canonical
path, query and headers) and parses the answers and errors with its own rest-json parser, so
the test checks the emulator against a signer and a parser we did not write.

Usage: api_botocore.py ENDPOINT CA_PEM_PATH ACCESS_KEY_ID SECRET TEMP_ACCESS_KEY_ID TOKEN

Prints one JSON object on stdout: {"case name": {...outcome...}, ...}. An outcome is either
{"ok": true, "response": {...}} with botocore's parsed output (ResponseMetadata included) or
{"ok": false, "code": ..., "message": ..., "status": ..., "exception": <class name>}.
"""

import json
import sys

import boto3
import botocore
from botocore.config import Config


def outcome(call):
    try:
        response = call()
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        return {
            "ok": False,
            "code": error.get("Code"),
            "message": error.get("Message"),
            "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "request_id": e.response.get("ResponseMetadata", {}).get("RequestId"),
            "exception": type(e).__name__,
        }
    response.pop("payload", None)
    return {"ok": True, "response": response}


def main():
    endpoint, ca, akid, secret, temp_akid, token = sys.argv[1:7]
    config = Config(retries={"max_attempts": 1, "mode": "standard"})

    def client(service, **kwargs):
        options = dict(
            endpoint_url=endpoint,
            region_name="us-east-1",
            verify=ca,
            config=config,
            aws_access_key_id=akid,
            aws_secret_access_key=secret,
        )
        options.update(kwargs)
        return boto3.client(service, **options)

    iot = client("iot")
    data = client("iot-data")
    results = {
        "describe_thing": outcome(lambda: iot.describe_thing(thingName="a:b_c-d")),
        "list_things": outcome(lambda: iot.list_things(maxResults=5, thingTypeName="t y")),
        "create_thing": outcome(
            lambda: iot.create_thing(
                thingName="t1", attributePayload={"attributes": {"k": "v w"}}
            )
        ),
        "publish": outcome(
            lambda: data.publish(
                topic="$aws/things/x/shadow/update", qos=1, payload=b'{"state":{}}'
            )
        ),
        "missing_thing": outcome(lambda: iot.describe_thing(thingName="missing")),
        "wrong_secret": outcome(
            lambda: client("iot", aws_secret_access_key="wrong").describe_thing(thingName="t")
        ),
        "unknown_key": outcome(
            lambda: client("iot", aws_access_key_id="AKIAUNKNOWN").describe_thing(thingName="t")
        ),
        "unknown_key_publish": outcome(
            lambda: client("iot-data", aws_access_key_id="AKIAUNKNOWN").publish(
                topic="t", qos=0, payload=b"y" * (900 * 1024)
            )
        ),
        "unsigned": outcome(
            lambda: boto3.client(
                "iot",
                endpoint_url=endpoint,
                region_name="us-east-1",
                verify=ca,
                config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}),
            ).describe_thing(thingName="t")
        ),
        "temporary": outcome(
            lambda: client(
                "iot",
                aws_access_key_id=temp_akid,
                aws_session_token=token,
            ).describe_thing(thingName="t2")
        ),
        "too_large": outcome(
            lambda: data.publish(topic="big", qos=0, payload=b"x" * (1024 * 1024 + 1))
        ),
    }
    try:
        iot.describe_thing(thingName="missing")
        results["missing_thing_modeled"] = "no exception"
    except iot.exceptions.ResourceNotFoundException as e:
        results["missing_thing_modeled"] = type(e).__name__
    print(json.dumps(results))


if __name__ == "__main__":
    main()
