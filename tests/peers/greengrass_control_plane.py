#!/usr/bin/env python3
"""boto3 against the emulator's Greengrass control plane: `greengrassv2` (client devices of core
devices) and `greengrass` (the V1 model's connectivity information, what cores and the AWS CLI
call).

Used by the emulator's integration test `crates/emulator/tests/greengrass.rs`, which registers
core device `core1` and creates things `dev1`, `dev2` and `dev3` first. botocore signs with SigV4
(signing name `greengrass`) and parses AWS's rest-json answers and errors with its own code; the
client-device list is paged through with boto3's own paginator.

Usage: greengrass_control_plane.py --endpoint URL --ca FILE --access-key-id ID --secret S

Prints one JSON object per line:
  {"event": "check", "name": "...", "ok": true}
  {"event": "check", "name": "...", "ok": false, "detail": "..."}
  {"event": "connectivity", "ConnectivityInfo": [...]}
  {"event": "done", "passed": N, "failed": M}
Exit status: 0 when every check passed, 1 otherwise.
"""

import argparse
import json
import sys
import traceback

import boto3
import botocore
from botocore.config import Config

RESULTS = {"passed": 0, "failed": 0}


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def check(name, condition, detail=""):
    if condition:
        RESULTS["passed"] += 1
        emit("check", name=name, ok=True)
    else:
        RESULTS["failed"] += 1
        emit("check", name=name, ok=False, detail=str(detail))


def expect_error(name, client, exception, status, call):
    """Runs `call`, which must raise `client.exceptions.<exception>` with HTTP `status`."""
    try:
        result = call()
    except botocore.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        message = e.response.get("Error", {}).get("Message") or ""
        got = e.response["ResponseMetadata"]["HTTPStatusCode"]
        expected = getattr(client.exceptions, exception)
        check(name, isinstance(e, expected) and code == exception and message and got == status,
              f"raised {type(e).__name__} code={code!r} status={got} message={message!r}")
        return e
    check(name, False, f"no error; answered {result!r}")
    return None


def client_devices(gg):
    answer = gg.batch_associate_client_device_with_core_device(
        coreDeviceThingName="core1",
        entries=[{"thingName": t} for t in ("dev3", "dev1", "ghost", "dev2")])
    errors = [(e["thingName"], e["code"]) for e in answer["errorEntries"]]
    check("BatchAssociateClientDeviceWithCoreDevice reports the unknown thing only",
          errors == [("ghost", "ResourceNotFoundException")], answer)
    e = expect_error("BatchAssociate on a thing that is no core device: ResourceNotFoundException", gg,
                     "ResourceNotFoundException", 404,
                     lambda: gg.batch_associate_client_device_with_core_device(
                         coreDeviceThingName="dev1", entries=[{"thingName": "dev2"}]))
    check("ResourceNotFoundException names the resource and its type",
          e is not None and e.response.get("resourceId") == "dev1"
          and e.response.get("resourceType") == "coreDevice", e and e.response)
    pages = gg.get_paginator("list_client_devices_associated_with_core_device").paginate(
        coreDeviceThingName="core1", PaginationConfig={"PageSize": 2})
    items, count = [], 0
    for page in pages:
        count += 1
        items.extend(page["associatedClientDevices"])
    check("ListClientDevicesAssociatedWithCoreDevice pages through every client device by name",
          [i["thingName"] for i in items] == ["dev1", "dev2", "dev3"] and count == 2, (items, count))
    check("associationTimestamp is a timestamp",
          all(hasattr(i["associationTimestamp"], "year") for i in items), items)
    expect_error("maxResults 101: ValidationException", gg, "ValidationException", 400,
                 lambda: gg.list_client_devices_associated_with_core_device(
                     coreDeviceThingName="core1", maxResults=101))
    answer = gg.batch_disassociate_client_device_from_core_device(
        coreDeviceThingName="core1", entries=[{"thingName": "dev3"}, {"thingName": "never"}])
    check("BatchDisassociateClientDeviceFromCoreDevice", answer["errorEntries"] == [], answer)
    left = gg.list_client_devices_associated_with_core_device(coreDeviceThingName="core1")
    check("the disassociated device is gone",
          [i["thingName"] for i in left["associatedClientDevices"]] == ["dev1", "dev2"]
          and "nextToken" not in left, left)


def connectivity(v1):
    entries = [
        {"Id": "lan", "HostAddress": "127.0.0.1", "PortNumber": 8883, "Metadata": "first"},
        {"Id": "name", "HostAddress": "localhost", "PortNumber": 18883, "Metadata": ""},
    ]
    updated = v1.update_connectivity_info(ThingName="core1", ConnectivityInfo=entries)
    check("UpdateConnectivityInfo answers a version and a message",
          updated.get("Version") == "1" and updated.get("Message"), updated)
    got = v1.get_connectivity_info(ThingName="core1")
    check("GetConnectivityInfo answers the entries in order", got["ConnectivityInfo"] == entries, got)
    emit("connectivity", ConnectivityInfo=got["ConnectivityInfo"])
    expect_error("UpdateConnectivityInfo of an unknown thing: BadRequestException", v1,
                 "BadRequestException", 400,
                 lambda: v1.update_connectivity_info(ThingName="ghost", ConnectivityInfo=entries))
    expect_error("an empty HostAddress: BadRequestException", v1, "BadRequestException", 400,
                 lambda: v1.update_connectivity_info(
                     ThingName="core1", ConnectivityInfo=[{"Id": "x", "HostAddress": "", "PortNumber": 1}]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(aws_access_key_id=args.access_key_id,
                                    aws_secret_access_key=args.secret, region_name="us-east-1")
    gg = session.client("greengrassv2", endpoint_url=args.endpoint, verify=args.ca, config=config)
    v1 = session.client("greengrass", endpoint_url=args.endpoint, verify=args.ca, config=config)
    for part, client in ((client_devices, gg), (connectivity, v1)):
        try:
            part(client)
        except Exception:
            check(f"{part.__name__} ran to the end", False, traceback.format_exc())
    emit("done", **RESULTS)
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
