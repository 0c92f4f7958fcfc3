#!/usr/bin/env python3
"""boto3 against the emulator's control plane (`iot`) and HTTP data plane (`iot-data`).

Used by the emulator's integration test `crates/emulator/tests/api_boto3.rs`: every operation the
emulator serves is called through boto3 (botocore signs with SigV4 and parses AWS's rest-json
answers and errors with its own code), the happy path and at least one error each, with the
exception class botocore raises checked, and the List operations paged through with boto3's own
paginators.

Usage: iot_control_plane.py --endpoint URL --ca FILE --access-key-id ID --secret S

Prints one JSON object per line:
  {"event": "check", "name": "...", "ok": true}
  {"event": "check", "name": "...", "ok": false, "detail": "..."}
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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RESULTS = {"passed": 0, "failed": 0}

ALLOW_CONNECT = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
})
ALLOW_PUBLISH = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}],
})
TEMPLATE_BODY = json.dumps({
    "Parameters": {"SerialNumber": {"Type": "String"},
                   "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing",
                  "Properties": {"ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]}}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                                       "Status": "ACTIVE"}},
    },
})


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def check(name, condition, detail=""):
    if condition:
        RESULTS["passed"] += 1
        emit("check", name=name, ok=True)
    else:
        RESULTS["failed"] += 1
        emit("check", name=name, ok=False, detail=str(detail))


def expect_error(name, client, exception, call):
    """Runs `call`, which must raise `client.exceptions.<exception>`."""
    try:
        result = call()
    except botocore.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        message = e.response.get("Error", {}).get("Message") or ""
        expected = getattr(client.exceptions, exception)
        check(name, isinstance(e, expected) and code == exception and message,
              f"raised {type(e).__name__} code={code!r} message={message!r}")
        return e
    check(name, False, f"no error; answered {result!r}")
    return None


def paged(client, operation, key, **kwargs):
    """Every item of a List operation, through boto3's own paginator, pages of 2."""
    pages = client.get_paginator(operation).paginate(PaginationConfig={"PageSize": 2}, **kwargs)
    items, count = [], 0
    for page in pages:
        count += 1
        items.extend(page[key])
    return items, count


def make_csr():
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-device")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def foreign_certificate():
    """A self-signed certificate no emulator CA signed."""
    import datetime
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "foreign")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def things(iot):
    created = iot.create_thing(thingName="room-1", attributePayload={"attributes": {"floor": "1"}})
    check("CreateThing answers name, ARN and id",
          created["thingName"] == "room-1" and created["thingArn"].endswith(":thing/room-1")
          and len(created["thingId"]) == 36, created)
    again = iot.create_thing(thingName="room-1", attributePayload={"attributes": {"floor": "1"}})
    check("CreateThing is idempotent with the same attributes", again["thingId"] == created["thingId"])
    expect_error("CreateThing with other attributes: ResourceAlreadyExistsException", iot,
                 "ResourceAlreadyExistsException",
                 lambda: iot.create_thing(thingName="room-1",
                                          attributePayload={"attributes": {"floor": "2"}}))
    expect_error("CreateThing with a bad name: InvalidRequestException", iot, "InvalidRequestException",
                 lambda: iot.create_thing(thingName="bad name"))
    described = iot.describe_thing(thingName="room-1")
    check("DescribeThing", described["attributes"] == {"floor": "1"} and described["version"] == 1
          and described["defaultClientId"] == "room-1", described)
    expect_error("DescribeThing of a missing thing: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.describe_thing(thingName="nobody"))
    iot.update_thing(thingName="room-1", attributePayload={"attributes": {"wing": "east"}, "merge": True},
                     expectedVersion=1)
    described = iot.describe_thing(thingName="room-1")
    check("UpdateThing merges attributes and counts the version",
          described["attributes"] == {"floor": "1", "wing": "east"} and described["version"] == 2, described)
    expect_error("UpdateThing with a stale version: VersionConflictException", iot,
                 "VersionConflictException",
                 lambda: iot.update_thing(thingName="room-1", expectedVersion=1,
                                          attributePayload={"attributes": {"x": "y"}}))
    for i in range(5):
        iot.create_thing(thingName=f"page-{i}", attributePayload={"attributes": {"kind": "pager"}})
    names, pages = paged(iot, "list_things", "things", attributeName="kind", attributeValue="pager")
    check("ListThings pages through every thing once",
          [t["thingName"] for t in names] == [f"page-{i}" for i in range(5)] and pages == 3,
          (names, pages))
    expect_error("ListThings with a forged nextToken: InvalidRequestException", iot,
                 "InvalidRequestException", lambda: iot.list_things(nextToken="not-a-token"))
    iot.delete_thing(thingName="page-0")
    iot.delete_thing(thingName="page-0")
    check("DeleteThing succeeds, also when the thing is gone",
          "page-0" not in [t["thingName"] for t in iot.list_things()["things"]])
    expect_error("DeleteThing with a stale version: VersionConflictException", iot,
                 "VersionConflictException",
                 lambda: iot.delete_thing(thingName="page-1", expectedVersion=7))


def thing_types(iot):
    created = iot.create_thing_type(thingTypeName="lamp", thingTypeProperties={
        "thingTypeDescription": "a lamp", "searchableAttributes": ["color"]})
    check("CreateThingType", created["thingTypeArn"].endswith(":thingtype/lamp"), created)
    expect_error("CreateThingType twice: ResourceAlreadyExistsException", iot,
                 "ResourceAlreadyExistsException", lambda: iot.create_thing_type(thingTypeName="lamp"))
    described = iot.describe_thing_type(thingTypeName="lamp")
    check("DescribeThingType", described["thingTypeProperties"]["searchableAttributes"] == ["color"]
          and described["thingTypeMetadata"]["deprecated"] is False, described)
    iot.create_thing(thingName="lamp-1", thingTypeName="lamp")
    listed = iot.list_thing_types()["thingTypes"]
    check("ListThingTypes", [t["thingTypeName"] for t in listed] == ["lamp"], listed)
    check("ListThings by type", [t["thingName"] for t in iot.list_things(thingTypeName="lamp")["things"]]
          == ["lamp-1"])
    expect_error("CreateThing of a missing type: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.create_thing(thingName="x", thingTypeName="nope"))
    expect_error("DeleteThingType before deprecation: InvalidRequestException", iot,
                 "InvalidRequestException", lambda: iot.delete_thing_type(thingTypeName="lamp"))
    iot.deprecate_thing_type(thingTypeName="lamp")
    check("DeprecateThingType", iot.describe_thing_type(thingTypeName="lamp")
          ["thingTypeMetadata"]["deprecated"] is True)
    iot.update_thing(thingName="lamp-1", removeThingType=True)
    iot.delete_thing_type(thingTypeName="lamp")
    expect_error("DeleteThingType deleted it", iot, "ResourceNotFoundException",
                 lambda: iot.describe_thing_type(thingTypeName="lamp"))


def thing_groups(iot):
    created = iot.create_thing_group(thingGroupName="site")
    check("CreateThingGroup", created["thingGroupArn"].endswith(":thinggroup/site"), created)
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="site")
    expect_error("CreateThingGroup under a missing parent: ResourceNotFoundException", iot,
                 "ResourceNotFoundException",
                 lambda: iot.create_thing_group(thingGroupName="x", parentGroupName="nope"))
    described = iot.describe_thing_group(thingGroupName="floor-1")
    check("DescribeThingGroup", described["thingGroupMetadata"]["parentGroupName"] == "site", described)
    iot.add_thing_to_thing_group(thingGroupName="site", thingName="room-1")
    iot.add_thing_to_thing_group(thingGroupArn=described["thingGroupArn"],
                                 thingArn=iot.describe_thing(thingName="page-1")["thingArn"])
    expect_error("AddThingToThingGroup of a missing thing: ResourceNotFoundException", iot,
                 "ResourceNotFoundException",
                 lambda: iot.add_thing_to_thing_group(thingGroupName="site", thingName="nobody"))
    members, _ = paged(iot, "list_things_in_thing_group", "things", thingGroupName="site", recursive=True)
    check("ListThingsInThingGroup, recursive", members == ["page-1", "room-1"], members)
    groups, _ = paged(iot, "list_thing_groups", "thingGroups")
    check("ListThingGroups", [g["groupName"] for g in groups] == ["floor-1", "site"], groups)
    for_thing = iot.list_thing_groups_for_thing(thingName="room-1")["thingGroups"]
    check("ListThingGroupsForThing", [g["groupName"] for g in for_thing] == ["site"], for_thing)
    iot.remove_thing_from_thing_group(thingGroupName="site", thingName="room-1")
    check("RemoveThingFromThingGroup",
          iot.list_things_in_thing_group(thingGroupName="site")["things"] == [])
    expect_error("DeleteThingGroup with a child group: DeleteConflictException", iot,
                 "DeleteConflictException", lambda: iot.delete_thing_group(thingGroupName="site"))
    iot.delete_thing_group(thingGroupName="floor-1")
    iot.delete_thing_group(thingGroupName="site")
    check("DeleteThingGroup", iot.list_thing_groups()["thingGroups"] == [])


def certificates_and_policies(iot):
    keys = iot.create_keys_and_certificate(setAsActive=True)
    check("CreateKeysAndCertificate answers a PascalCase keyPair",
          "PRIVATE KEY" in keys["keyPair"]["PrivateKey"] and "PUBLIC KEY" in keys["keyPair"]["PublicKey"]
          and len(keys["certificateId"]) == 64, sorted(keys))
    cert_id, cert_arn = keys["certificateId"], keys["certificateArn"]
    from_csr = iot.create_certificate_from_csr(certificateSigningRequest=make_csr(), setAsActive=False)
    check("CreateCertificateFromCsr", from_csr["certificatePem"].startswith("-----BEGIN CERTIFICATE"))
    expect_error("CreateCertificateFromCsr with garbage: InvalidRequestException", iot,
                 "InvalidRequestException",
                 lambda: iot.create_certificate_from_csr(certificateSigningRequest="garbage"))
    described = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    check("DescribeCertificate", described["status"] == "ACTIVE"
          and described["certificatePem"] == keys["certificatePem"]
          and described["validity"]["notAfter"] > described["validity"]["notBefore"], described)
    expect_error("DescribeCertificate of a missing id: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.describe_certificate(certificateId="ab" * 32))
    foreign = iot.register_certificate_without_ca(certificatePem=foreign_certificate(), status="INACTIVE")
    check("RegisterCertificateWithoutCA", len(foreign["certificateId"]) == 64, foreign)
    expect_error("RegisterCertificate of a foreign certificate: CertificateValidationException", iot,
                 "CertificateValidationException",
                 lambda: iot.register_certificate(certificatePem=foreign_certificate()))
    # A certificate of the emulator's CA that is no longer registered.
    spare = iot.create_keys_and_certificate(setAsActive=False)
    iot.delete_certificate(certificateId=spare["certificateId"])
    registered = iot.register_certificate(certificatePem=spare["certificatePem"], status="ACTIVE")
    check("RegisterCertificate of a certificate of the emulator's CA",
          registered["certificateId"] == spare["certificateId"], registered)
    expect_error("RegisterCertificate of a registered certificate: ResourceAlreadyExistsException", iot,
                 "ResourceAlreadyExistsException",
                 lambda: iot.register_certificate(certificatePem=spare["certificatePem"]))
    certs, pages = paged(iot, "list_certificates", "certificates")
    check("ListCertificates pages through every certificate",
          len(certs) == 4 and pages == 2 and cert_id in [c["certificateId"] for c in certs], (certs, pages))

    created = iot.create_policy(policyName="room-policy", policyDocument=ALLOW_CONNECT)
    check("CreatePolicy", created["policyVersionId"] == "1" and created["policyArn"].endswith(":policy/room-policy"))
    expect_error("CreatePolicy with a malformed document: MalformedPolicyException", iot,
                 "MalformedPolicyException",
                 lambda: iot.create_policy(policyName="bad", policyDocument="{\"Statement\": 3}"))
    expect_error("CreatePolicy twice: ResourceAlreadyExistsException", iot, "ResourceAlreadyExistsException",
                 lambda: iot.create_policy(policyName="room-policy", policyDocument=ALLOW_CONNECT))
    version = iot.create_policy_version(policyName="room-policy", policyDocument=ALLOW_PUBLISH,
                                        setAsDefault=True)
    check("CreatePolicyVersion", version["policyVersionId"] == "2" and version["isDefaultVersion"])
    got = iot.get_policy(policyName="room-policy")
    check("GetPolicy answers the default version",
          got["defaultVersionId"] == "2" and json.loads(got["policyDocument"]) == json.loads(ALLOW_PUBLISH), got)
    expect_error("GetPolicy of a missing policy: ResourceNotFoundException", iot, "ResourceNotFoundException",
                 lambda: iot.get_policy(policyName="nope"))
    v1 = iot.get_policy_version(policyName="room-policy", policyVersionId="1")
    check("GetPolicyVersion", v1["isDefaultVersion"] is False
          and json.loads(v1["policyDocument"]) == json.loads(ALLOW_CONNECT))
    versions = iot.list_policy_versions(policyName="room-policy")["policyVersions"]
    check("ListPolicyVersions", [v["versionId"] for v in versions] == ["2", "1"], versions)
    expect_error("DeletePolicyVersion of the default: DeleteConflictException", iot,
                 "DeleteConflictException",
                 lambda: iot.delete_policy_version(policyName="room-policy", policyVersionId="2"))
    iot.set_default_policy_version(policyName="room-policy", policyVersionId="1")
    iot.delete_policy_version(policyName="room-policy", policyVersionId="2")
    check("SetDefaultPolicyVersion and DeletePolicyVersion",
          [v["versionId"] for v in iot.list_policy_versions(policyName="room-policy")["policyVersions"]] == ["1"])
    for i in range(3):
        iot.create_policy(policyName=f"p{i}", policyDocument=ALLOW_CONNECT)
    policies, pages = paged(iot, "list_policies", "policies")
    check("ListPolicies pages", [p["policyName"] for p in policies] == ["p0", "p1", "p2", "room-policy"]
          and pages == 2, (policies, pages))

    iot.attach_policy(policyName="room-policy", target=cert_arn)
    expect_error("AttachPolicy of a missing policy: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.attach_policy(policyName="nope", target=cert_arn))
    attached = iot.list_attached_policies(target=cert_arn)["policies"]
    check("ListAttachedPolicies", [p["policyName"] for p in attached] == ["room-policy"], attached)
    targets = iot.list_targets_for_policy(policyName="room-policy")["targets"]
    check("ListTargetsForPolicy", targets == [cert_arn], targets)
    expect_error("DeletePolicy while attached: DeleteConflictException", iot, "DeleteConflictException",
                 lambda: iot.delete_policy(policyName="room-policy"))

    iot.attach_thing_principal(thingName="room-1", principal=cert_arn)
    expect_error("AttachThingPrincipal to a missing thing: ResourceNotFoundException", iot,
                 "ResourceNotFoundException",
                 lambda: iot.attach_thing_principal(thingName="nobody", principal=cert_arn))
    principals = iot.list_thing_principals(thingName="room-1")["principals"]
    check("ListThingPrincipals", principals == [cert_arn], principals)
    owners = iot.list_principal_things(principal=cert_arn)["things"]
    check("ListPrincipalThings", owners == ["room-1"], owners)
    expect_error("UpdateCertificate to PENDING_ACTIVATION: InvalidRequestException", iot,
                 "InvalidRequestException",
                 lambda: iot.update_certificate(certificateId=cert_id, newStatus="PENDING_ACTIVATION"))
    expect_error("DeleteCertificate while ACTIVE: CertificateStateException", iot,
                 "CertificateStateException", lambda: iot.delete_certificate(certificateId=cert_id))
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    check("UpdateCertificate", iot.describe_certificate(certificateId=cert_id)
          ["certificateDescription"]["status"] == "INACTIVE")
    expect_error("DeleteCertificate while attached to a thing: DeleteConflictException", iot,
                 "DeleteConflictException", lambda: iot.delete_certificate(certificateId=cert_id))
    iot.detach_thing_principal(thingName="room-1", principal=cert_arn)
    iot.detach_policy(policyName="room-policy", target=cert_arn)
    check("DetachThingPrincipal and DetachPolicy",
          iot.list_thing_principals(thingName="room-1")["principals"] == []
          and iot.list_attached_policies(target=cert_arn)["policies"] == [])
    iot.delete_certificate(certificateId=cert_id)
    iot.delete_policy(policyName="room-policy")
    expect_error("DeleteCertificate and DeletePolicy deleted them", iot, "ResourceNotFoundException",
                 lambda: iot.get_policy(policyName="room-policy"))


def endpoint_and_templates(iot):
    address = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    check("DescribeEndpoint answers the MQTT endpoint", address.startswith("localhost"), address)
    expect_error("DescribeEndpoint of an unknown type: InvalidRequestException", iot,
                 "InvalidRequestException", lambda: iot.describe_endpoint(endpointType="iot:Nope"))
    created = iot.create_provisioning_template(
        templateName="sensors", templateBody=TEMPLATE_BODY, enabled=True,
        provisioningRoleArn="arn:aws:iam::123456789012:role/provisioning")
    check("CreateProvisioningTemplate", created["templateArn"].endswith(":provisioningtemplate/sensors"),
          created)
    expect_error("CreateProvisioningTemplate with a bad body: InvalidRequestException", iot,
                 "InvalidRequestException",
                 lambda: iot.create_provisioning_template(
                     templateName="bad", templateBody="{", provisioningRoleArn="arn:aws:iam::1:role/r"))
    described = iot.describe_provisioning_template(templateName="sensors")
    check("DescribeProvisioningTemplate", described["enabled"] is True
          and described["templateBody"] == TEMPLATE_BODY, described)
    iot.update_provisioning_template(templateName="sensors", enabled=False, description="off")
    described = iot.describe_provisioning_template(templateName="sensors")
    check("UpdateProvisioningTemplate", described["enabled"] is False and described["description"] == "off")
    listed = iot.list_provisioning_templates()["templates"]
    check("ListProvisioningTemplates", [t["templateName"] for t in listed] == ["sensors"], listed)
    iot.delete_provisioning_template(templateName="sensors")
    expect_error("DeleteProvisioningTemplate deleted it", iot, "ResourceNotFoundException",
                 lambda: iot.describe_provisioning_template(templateName="sensors"))


def jobs(iot):
    dev1 = iot.create_thing(thingName="job-dev-1")["thingArn"]
    iot.create_thing(thingName="job-dev-2")
    group_arn = iot.create_thing_group(thingGroupName="job-lamps")["thingGroupArn"]
    iot.add_thing_to_thing_group(thingGroupName="job-lamps", thingName="job-dev-2")
    created = iot.create_job(jobId="fw-1", targets=[dev1, group_arn], description="firmware",
                             document=json.dumps({"op": "update"}),
                             timeoutConfig={"inProgressTimeoutInMinutes": 30})
    check("CreateJob answers ARN, id and description", created["jobArn"].endswith(":job/fw-1")
          and created["jobId"] == "fw-1" and created["description"] == "firmware", created)
    expect_error("CreateJob twice: ResourceAlreadyExistsException", iot, "ResourceAlreadyExistsException",
                 lambda: iot.create_job(jobId="fw-1", targets=[dev1], document="{}"))
    expect_error("CreateJob on a missing thing: ResourceNotFoundException", iot, "ResourceNotFoundException",
                 lambda: iot.create_job(jobId="fw-x", targets=[dev1.replace("job-dev-1", "ghost")],
                                        document="{}"))
    expect_error("CreateJob with an S3 documentSource: InvalidRequestException", iot,
                 "InvalidRequestException",
                 lambda: iot.create_job(jobId="fw-x", targets=[dev1], documentSource="s3://b/job.json"))
    job = iot.describe_job(jobId="fw-1")["job"]
    check("DescribeJob counts the queued executions of the thing and the group's thing",
          job["status"] == "IN_PROGRESS" and job["targetSelection"] == "SNAPSHOT"
          and job["jobProcessDetails"]["numberOfQueuedThings"] == 2
          and job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
          and job["createdAt"].year >= 2024, job)
    expect_error("DescribeJob of a missing job: ResourceNotFoundException", iot, "ResourceNotFoundException",
                 lambda: iot.describe_job(jobId="ghost"))
    document = iot.get_job_document(jobId="fw-1")["document"]
    check("GetJobDocument", json.loads(document) == {"op": "update"}, document)
    expect_error("GetJobDocument of a missing job: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.get_job_document(jobId="ghost"))
    iot.update_job(jobId="fw-1", description="firmware 2", jobExecutionsRolloutConfig={"maximumPerMinute": 5})
    job = iot.describe_job(jobId="fw-1")["job"]
    check("UpdateJob", job["description"] == "firmware 2"
          and job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 5}, job)
    expect_error("UpdateJob with a timeout over 10080 minutes: InvalidRequestException", iot,
                 "InvalidRequestException",
                 lambda: iot.update_job(jobId="fw-1", timeoutConfig={"inProgressTimeoutInMinutes": 20000}))
    execution = iot.describe_job_execution(jobId="fw-1", thingName="job-dev-2")["execution"]
    check("DescribeJobExecution", execution["status"] == "QUEUED" and execution["executionNumber"] == 1
          and execution["versionNumber"] == 1 and execution["thingArn"].endswith(":thing/job-dev-2"),
          execution)
    expect_error("DescribeJobExecution of a missing execution number: ResourceNotFoundException", iot,
                 "ResourceNotFoundException",
                 lambda: iot.describe_job_execution(jobId="fw-1", thingName="job-dev-2", executionNumber=7))
    for_job, pages = paged(iot, "list_job_executions_for_job", "executionSummaries", jobId="fw-1")
    check("ListJobExecutionsForJob", [e["thingArn"].split("/")[-1] for e in for_job]
          == ["job-dev-1", "job-dev-2"], for_job)
    expect_error("ListJobExecutionsForJob of a missing job: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.list_job_executions_for_job(jobId="ghost"))
    for_thing = iot.list_job_executions_for_thing(thingName="job-dev-1")["executionSummaries"]
    check("ListJobExecutionsForThing", [(e["jobId"], e["jobExecutionSummary"]["status"]) for e in for_thing]
          == [("fw-1", "QUEUED")], for_thing)
    expect_error("ListJobExecutionsForThing of a missing thing: ResourceNotFoundException", iot,
                 "ResourceNotFoundException", lambda: iot.list_job_executions_for_thing(thingName="ghost"))
    iot.cancel_job_execution(jobId="fw-1", thingName="job-dev-1", expectedVersion=1,
                             statusDetails={"why": "operator"})
    execution = iot.describe_job_execution(jobId="fw-1", thingName="job-dev-1")["execution"]
    check("CancelJobExecution", execution["status"] == "CANCELED" and execution["versionNumber"] == 2
          and execution["statusDetails"]["detailsMap"] == {"why": "operator"}, execution)
    expect_error("CancelJobExecution of a canceled execution: InvalidStateTransitionException", iot,
                 "InvalidStateTransitionException",
                 lambda: iot.cancel_job_execution(jobId="fw-1", thingName="job-dev-1"))
    expect_error("CancelJobExecution with a stale version: VersionConflictException", iot,
                 "VersionConflictException",
                 lambda: iot.cancel_job_execution(jobId="fw-1", thingName="job-dev-2", expectedVersion=5))
    expect_error("DeleteJob while IN_PROGRESS: InvalidStateTransitionException", iot,
                 "InvalidStateTransitionException", lambda: iot.delete_job(jobId="fw-1"))
    expect_error("DeleteJobExecution of a QUEUED execution: InvalidStateTransitionException", iot,
                 "InvalidStateTransitionException",
                 lambda: iot.delete_job_execution(jobId="fw-1", thingName="job-dev-2", executionNumber=1))
    iot.delete_job_execution(jobId="fw-1", thingName="job-dev-1", executionNumber=1)
    expect_error("DeleteJobExecution deleted it", iot, "ResourceNotFoundException",
                 lambda: iot.describe_job_execution(jobId="fw-1", thingName="job-dev-1"))
    canceled = iot.cancel_job(jobId="fw-1", reasonCode="ROLLBACK", comment="bad build")
    job = iot.describe_job(jobId="fw-1")["job"]
    check("CancelJob cancels the queued executions", canceled["jobId"] == "fw-1"
          and job["status"] == "CANCELED" and job["reasonCode"] == "ROLLBACK"
          and job["jobProcessDetails"]["numberOfCanceledThings"] == 1, job)
    expect_error("CancelJob of a missing job: ResourceNotFoundException", iot, "ResourceNotFoundException",
                 lambda: iot.cancel_job(jobId="ghost"))
    iot.create_job(jobId="cont-1", targets=[group_arn], document="{}", targetSelection="CONTINUOUS")
    iot.add_thing_to_thing_group(thingGroupName="job-lamps", thingName="job-dev-1")
    execution = iot.describe_job_execution(jobId="cont-1", thingName="job-dev-1")["execution"]
    check("a CONTINUOUS job queues a thing added to its group", execution["status"] == "QUEUED", execution)
    iot.remove_thing_from_thing_group(thingGroupName="job-lamps", thingName="job-dev-1")
    execution = iot.describe_job_execution(jobId="cont-1", thingName="job-dev-1")["execution"]
    check("a CONTINUOUS job removes a thing that leaves its group", execution["status"] == "REMOVED",
          execution)
    listed, pages = paged(iot, "list_jobs", "jobs")
    check("ListJobs pages", [j["jobId"] for j in listed] == ["cont-1", "fw-1"] and pages == 1, listed)
    canceled = iot.list_jobs(status="CANCELED")["jobs"]
    check("ListJobs by status", [j["jobId"] for j in canceled] == ["fw-1"], canceled)
    expect_error("ListJobs with an unknown status: InvalidRequestException", iot, "InvalidRequestException",
                 lambda: iot.list_jobs(status="BOGUS"))
    iot.delete_job(jobId="fw-1")
    iot.delete_job(jobId="cont-1", force=True)
    check("DeleteJob, and with force while IN_PROGRESS", iot.list_jobs()["jobs"] == [])
    expect_error("DeleteJob of a deleted job: ResourceNotFoundException", iot, "ResourceNotFoundException",
                 lambda: iot.delete_job(jobId="fw-1"))


def jobs_sample(iot):
    """The control-plane calls of AWS's Python jobs sample
    (aws-iot-device-sdk-python-v2 samples/service_clients/jobs.py), in its order."""
    thing_name = "jobs-sample-thing"
    try:
        iot.describe_thing(thingName=thing_name)
        check("the jobs sample's describe_thing of a new thing raises ResourceNotFoundException", False)
    except iot.exceptions.ResourceNotFoundException:
        check("the jobs sample's describe_thing of a new thing raises ResourceNotFoundException", True)
    thing_arn = iot.create_thing(thingName=thing_name)["thingArn"]
    job_id = "Job_sample_1"
    iot.create_job(jobId=job_id, targets=[thing_arn],
                   document=json.dumps({"ToDo": "Reboot"}), targetSelection="SNAPSHOT")
    queued = iot.list_job_executions_for_thing(thingName=thing_name)["executionSummaries"]
    iot.delete_job(jobId=job_id, force=True)
    check("the jobs sample's create_job and delete_job(force=True)",
          [e["jobId"] for e in queued] == [job_id] and iot.list_jobs()["jobs"] == [], queued)


def data_plane(data, iot):
    iot.create_thing(thingName="lamp-2")
    expect_error("GetThingShadow before any update: ResourceNotFoundException", data,
                 "ResourceNotFoundException", lambda: data.get_thing_shadow(thingName="lamp-2"))
    updated = json.loads(data.update_thing_shadow(
        thingName="lamp-2", payload=json.dumps({"state": {"desired": {"on": True}}}))["payload"].read())
    check("UpdateThingShadow answers the accepted document", updated["version"] == 1
          and updated["state"] == {"desired": {"on": True}}, updated)
    got = json.loads(data.get_thing_shadow(thingName="lamp-2")["payload"].read())
    check("GetThingShadow shows the delta", got["state"]["delta"] == {"on": True} and got["version"] == 1, got)
    expect_error("UpdateThingShadow with a stale version: ConflictException", data, "ConflictException",
                 lambda: data.update_thing_shadow(thingName="lamp-2", payload=json.dumps(
                     {"state": {"reported": {"on": True}}, "version": 7})))
    expect_error("UpdateThingShadow with invalid JSON: InvalidRequestException", data,
                 "InvalidRequestException",
                 lambda: data.update_thing_shadow(thingName="lamp-2", payload=b"{"))
    for name in ["b", "a", "c"]:
        data.update_thing_shadow(thingName="lamp-2", shadowName=name,
                                 payload=json.dumps({"state": {"reported": {"n": name}}}))
    names, pages = [], 0
    token = None
    while True:
        kwargs = {"thingName": "lamp-2", "pageSize": 2}
        if token:
            kwargs["nextToken"] = token
        page = data.list_named_shadows_for_thing(**kwargs)
        names += page["results"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    check("ListNamedShadowsForThing pages", names == ["a", "b", "c"] and pages == 2, (names, pages))
    deleted = json.loads(data.delete_thing_shadow(thingName="lamp-2", shadowName="a")["payload"].read())
    check("DeleteThingShadow", deleted["version"] == 1, deleted)
    expect_error("DeleteThingShadow twice: ResourceNotFoundException", data, "ResourceNotFoundException",
                 lambda: data.delete_thing_shadow(thingName="lamp-2", shadowName="a"))

    # As the AWS CLI's --user-properties passes them: a JSON text.
    data.publish(topic="dt/lamp-2/state", qos=1, retain=True, payload=b'{"on":true}',
                 userProperties=json.dumps([{"source": "boto3"}]))
    data.publish(topic="dt/lamp-3/state", qos=0, retain=True, payload=b"x")
    retained = data.get_retained_message(topic="dt/lamp-2/state")
    check("Publish retained, GetRetainedMessage", retained["payload"] == b'{"on":true}'
          and retained["qos"] == 1
          and json.loads(retained["userProperties"]) == [{"source": "boto3"}],
          retained)
    expect_error("GetRetainedMessage of a topic with none: ResourceNotFoundException", data,
                 "ResourceNotFoundException", lambda: data.get_retained_message(topic="dt/none"))
    topics, pages = paged(data, "list_retained_messages", "retainedTopics")
    check("ListRetainedMessages", [t["topic"] for t in topics] == ["dt/lamp-2/state", "dt/lamp-3/state"]
          and topics[0]["payloadSize"] == 11, topics)
    expect_error("Publish at QoS 2: InvalidRequestException", data, "InvalidRequestException",
                 lambda: data.publish(topic="dt/x", qos=2, payload=b"x"))
    expect_error("Publish of 200 KB: RequestEntityTooLargeException", data,
                 "RequestEntityTooLargeException",
                 lambda: data.publish(topic="dt/x", payload=b"x" * 200_000))


def refusals(endpoint, ca, config, access_key_id, secret):
    wrong = boto3.client("iot", endpoint_url=endpoint, region_name="us-east-1", verify=ca, config=config,
                         aws_access_key_id=access_key_id, aws_secret_access_key=secret + "x")
    try:
        wrong.list_things()
        check("a wrong secret is refused", False, "accepted")
    except botocore.exceptions.ClientError as e:
        check("a wrong secret is refused (403 InvalidSignatureException)",
              e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
              and e.response["Error"]["Code"] == "InvalidSignatureException", e.response["Error"])
    unknown = boto3.client("iot", endpoint_url=endpoint, region_name="us-east-1", verify=ca, config=config,
                           aws_access_key_id="AKIAUNKNOWNKEY000000", aws_secret_access_key=secret)
    try:
        unknown.list_things()
        check("an unknown access key is refused", False, "accepted")
    except botocore.exceptions.ClientError as e:
        check("an unknown access key is refused (403 UnrecognizedClientException)",
              e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
              and e.response["Error"]["Code"] == "UnrecognizedClientException", e.response["Error"])


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
    iot = session.client("iot", endpoint_url=args.endpoint, verify=args.ca, config=config)
    data = session.client("iot-data", endpoint_url=args.endpoint, verify=args.ca, config=config)
    for part in (things, thing_types, thing_groups, certificates_and_policies, endpoint_and_templates,
                 jobs, jobs_sample):
        try:
            part(iot)
        except Exception:
            check(f"{part.__name__} ran to the end", False, traceback.format_exc())
    try:
        data_plane(data, iot)
    except Exception:
        check("data_plane ran to the end", False, traceback.format_exc())
    refusals(args.endpoint, args.ca, config, args.access_key_id, args.secret)
    emit("done", **RESULTS)
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
