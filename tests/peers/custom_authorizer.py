#!/usr/bin/env python3
"""A custom authorizer's function for the emulator's tests: what an AWS IoT custom authorizer's
Lambda function does, as a command (`iotcore authorizer create NAME --command ...`).

Reads AWS's Lambda input event (JSON) on stdin and prints AWS's response on stdout:

  {"isAuthenticated": true, "principalId": "...", "disconnectAfterInSeconds": N,
   "refreshAfterInSeconds": 300, "policyDocuments": [{...}]}

The device is authenticated when the MQTT password (base64 in the event) is `--password`, or,
with `--token`, when the event's token is that token (and, with `--signed`, the emulator verified
its signature: `signatureVerified`). The policy allows iot:Connect, and iot:Publish, iot:Receive and
iot:Subscribe under `--topic-prefix` only. `--event-out FILE` saves the event received.
"""

import argparse
import base64
import json
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--password", help="the MQTT password that authenticates")
    p.add_argument("--token", help="the token that authenticates")
    p.add_argument("--signed", action="store_true", help="the token's signature must be verified")
    p.add_argument("--principal", default="testdevice", help="principalId to answer")
    p.add_argument("--topic-prefix", default="dt/custom", help="topics the policy allows")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--account", default="123456789012")
    p.add_argument("--disconnect-after", type=int, default=86400, metavar="S")
    p.add_argument("--event-out", help="file to save the event in")
    return p.parse_args(argv)


def authenticated(event, args):
    if args.token is not None:
        if event.get("token") != args.token:
            return False
        return event.get("signatureVerified") is True or not args.signed
    password = event.get("protocolData", {}).get("mqtt", {}).get("password")
    if password is None or args.password is None:
        return False
    return base64.b64decode(password).decode("utf-8", "replace") == args.password


def policy(args):
    arn = f"arn:aws:iot:{args.region}:{args.account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": f"{arn}:topic/{args.topic_prefix}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": f"{arn}:topicfilter/{args.topic_prefix}/*"},
        ],
    }


def main(argv):
    args = parse_args(argv)
    event = json.load(sys.stdin)
    if args.event_out:
        with open(args.event_out, "w", encoding="utf-8") as out:
            json.dump(event, out)
    if not authenticated(event, args):
        print(json.dumps({"isAuthenticated": False}))
        return 0
    print(json.dumps({
        "isAuthenticated": True,
        "principalId": args.principal,
        "disconnectAfterInSeconds": args.disconnect_after,
        "refreshAfterInSeconds": 300,
        "policyDocuments": [policy(args)],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
