//! AWS's REST bindings of the `iot`, `iot-data`, `greengrassv2` and
//! `greengrass` operations: which method and path each operation has, where
//! its members come from (path labels, query string, headers, JSON body), and
//! the call into the control layer or the data plane. The table follows
//! botocore's service models (`botocore/data/iot/2015-05-28/service-2.json`,
//! `…/iot-data/…`, `…/greengrassv2/2020-11-30/…`, `…/greengrass/2017-06-07/…`),
//! plus Greengrass discovery (`GET /greengrass/discover/thing/{thingName}`,
//! which has no botocore model); matching a request against it is
//! [`RouteTable`]'s.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::route::{Labels, RouteTable};
use crate::control::{Control, ControlError, ErrorCode};
use crate::data_plane::{DataPlane, PublishRequest};

/// Which AWS service an operation belongs to (they differ in error statuses
/// and in the signing names they accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `iot`: the control plane.
    Iot,
    /// `iot-data`: shadows, publish, retained messages.
    IotData,
    /// `greengrassv2`: client devices of core devices.
    Greengrass,
    /// `greengrass` (the V1 model): connectivity information.
    GreengrassV1,
    /// Greengrass discovery, for client devices' certificates.
    Discovery,
}

/// One operation's HTTP binding.
#[derive(Debug)]
pub(crate) struct Route {
    /// Its service.
    pub(crate) service: Service,
    /// AWS's operation name.
    pub(crate) operation: &'static str,
    /// The HTTP method.
    pub(crate) method: Method,
    /// The path template; `{name}` is one percent-encoded segment bound to
    /// member `name`.
    pub(crate) path: &'static str,
    /// Query parameter → member.
    query: &'static [(&'static str, &'static str)],
    /// Header → member.
    headers: &'static [(&'static str, &'static str)],
}

const PAGE: &[(&str, &str)] = &[("nextToken", "nextToken"), ("maxResults", "maxResults")];
const MARKER: &[(&str, &str)] = &[
    ("marker", "marker"),
    ("pageSize", "pageSize"),
    ("isAscendingOrder", "ascendingOrder"),
];
const PRINCIPAL: &[(&str, &str)] = &[("x-amzn-principal", "principal")];

macro_rules! routes {
    ($($service:ident $op:literal $method:ident $path:literal $query:expr, $headers:expr;)*) => {
        &[$(Route {
            service: Service::$service,
            operation: $op,
            method: Method::$method,
            path: $path,
            query: $query,
            headers: $headers,
        }),*]
    };
}

/// Every operation the emulator serves. Literal paths come before templated
/// ones that could also match them.
pub(crate) static ROUTES: &[Route] = routes! {
    Iot "AddThingToThingGroup" PUT "/thing-groups/addThingToThingGroup" &[], &[];
    Iot "RemoveThingFromThingGroup" PUT "/thing-groups/removeThingFromThingGroup" &[], &[];
    Iot "CreateThing" POST "/things/{thingName}" &[], &[];
    Iot "DescribeThing" GET "/things/{thingName}" &[], &[];
    Iot "UpdateThing" PATCH "/things/{thingName}" &[], &[];
    Iot "DeleteThing" DELETE "/things/{thingName}" &[("expectedVersion", "expectedVersion")], &[];
    Iot "ListThings" GET "/things" &[
        ("nextToken", "nextToken"), ("maxResults", "maxResults"),
        ("attributeName", "attributeName"), ("attributeValue", "attributeValue"),
        ("thingTypeName", "thingTypeName"), ("usePrefixAttributeValue", "usePrefixAttributeValue"),
    ], &[];
    Iot "CreateThingType" POST "/thing-types/{thingTypeName}" &[], &[];
    Iot "DescribeThingType" GET "/thing-types/{thingTypeName}" &[], &[];
    Iot "DeleteThingType" DELETE "/thing-types/{thingTypeName}" &[], &[];
    Iot "DeprecateThingType" POST "/thing-types/{thingTypeName}/deprecate" &[], &[];
    Iot "ListThingTypes" GET "/thing-types" &[
        ("nextToken", "nextToken"), ("maxResults", "maxResults"), ("thingTypeName", "thingTypeName"),
    ], &[];
    Iot "CreateThingGroup" POST "/thing-groups/{thingGroupName}" &[], &[];
    Iot "DescribeThingGroup" GET "/thing-groups/{thingGroupName}" &[], &[];
    Iot "DeleteThingGroup" DELETE "/thing-groups/{thingGroupName}" &[("expectedVersion", "expectedVersion")], &[];
    Iot "ListThingGroups" GET "/thing-groups" &[
        ("nextToken", "nextToken"), ("maxResults", "maxResults"), ("parentGroup", "parentGroup"),
        ("namePrefixFilter", "namePrefixFilter"), ("recursive", "recursive"),
    ], &[];
    Iot "ListThingsInThingGroup" GET "/thing-groups/{thingGroupName}/things" &[
        ("recursive", "recursive"), ("nextToken", "nextToken"), ("maxResults", "maxResults"),
    ], &[];
    Iot "ListThingGroupsForThing" GET "/things/{thingName}/thing-groups" PAGE, &[];
    Iot "CreateKeysAndCertificate" POST "/keys-and-certificate" &[("setAsActive", "setAsActive")], &[];
    Iot "CreateCertificateFromCsr" POST "/certificates" &[("setAsActive", "setAsActive")], &[];
    Iot "RegisterCertificateWithoutCA" POST "/certificate/register-no-ca" &[], &[];
    Iot "RegisterCertificate" POST "/certificate/register" &[("setAsActive", "setAsActive")], &[];
    Iot "DescribeCertificate" GET "/certificates/{certificateId}" &[], &[];
    Iot "UpdateCertificate" PUT "/certificates/{certificateId}" &[("newStatus", "newStatus")], &[];
    Iot "DeleteCertificate" DELETE "/certificates/{certificateId}" &[("forceDelete", "forceDelete")], &[];
    Iot "ListCertificates" GET "/certificates" MARKER, &[];
    Iot "CreatePolicy" POST "/policies/{policyName}" &[], &[];
    Iot "GetPolicy" GET "/policies/{policyName}" &[], &[];
    Iot "DeletePolicy" DELETE "/policies/{policyName}" &[], &[];
    Iot "ListPolicies" GET "/policies" MARKER, &[];
    Iot "SetDefaultAuthorizer" POST "/default-authorizer" &[], &[];
    Iot "DescribeDefaultAuthorizer" GET "/default-authorizer" &[], &[];
    Iot "ListAuthorizers" GET "/authorizers/" &[
        ("pageSize", "pageSize"), ("marker", "marker"), ("isAscendingOrder", "ascendingOrder"),
        ("status", "status"),
    ], &[];
    Iot "TestInvokeAuthorizer" POST "/authorizer/{authorizerName}/test" &[], &[];
    Iot "CreateAuthorizer" POST "/authorizer/{authorizerName}" &[], &[];
    Iot "DescribeAuthorizer" GET "/authorizer/{authorizerName}" &[], &[];
    Iot "UpdateAuthorizer" PUT "/authorizer/{authorizerName}" &[], &[];
    Iot "DeleteAuthorizer" DELETE "/authorizer/{authorizerName}" &[], &[];
    Iot "CreatePolicyVersion" POST "/policies/{policyName}/version" &[("setAsDefault", "setAsDefault")], &[];
    Iot "ListPolicyVersions" GET "/policies/{policyName}/version" &[], &[];
    Iot "GetPolicyVersion" GET "/policies/{policyName}/version/{policyVersionId}" &[], &[];
    Iot "DeletePolicyVersion" DELETE "/policies/{policyName}/version/{policyVersionId}" &[], &[];
    Iot "SetDefaultPolicyVersion" PATCH "/policies/{policyName}/version/{policyVersionId}" &[], &[];
    Iot "AttachPolicy" PUT "/target-policies/{policyName}" &[], &[];
    Iot "DetachPolicy" POST "/target-policies/{policyName}" &[], &[];
    Iot "ListAttachedPolicies" POST "/attached-policies/{target}" &[
        ("recursive", "recursive"), ("marker", "marker"), ("pageSize", "pageSize"),
    ], &[];
    Iot "ListTargetsForPolicy" POST "/policy-targets/{policyName}" &[
        ("marker", "marker"), ("pageSize", "pageSize"),
    ], &[];
    Iot "AttachThingPrincipal" PUT "/things/{thingName}/principals" &[("thingPrincipalType", "thingPrincipalType")], PRINCIPAL;
    Iot "DetachThingPrincipal" DELETE "/things/{thingName}/principals" &[], PRINCIPAL;
    Iot "ListThingPrincipals" GET "/things/{thingName}/principals" PAGE, &[];
    Iot "ListPrincipalThings" GET "/principals/things" PAGE, PRINCIPAL;
    Iot "DescribeEndpoint" GET "/endpoint" &[("endpointType", "endpointType")], &[];
    Iot "CreateProvisioningTemplate" POST "/provisioning-templates" &[], &[];
    Iot "ListProvisioningTemplates" GET "/provisioning-templates" PAGE, &[];
    Iot "DescribeProvisioningTemplate" GET "/provisioning-templates/{templateName}" &[], &[];
    Iot "UpdateProvisioningTemplate" PATCH "/provisioning-templates/{templateName}" &[], &[];
    Iot "DeleteProvisioningTemplate" DELETE "/provisioning-templates/{templateName}" &[], &[];
    Iot "CreateJob" PUT "/jobs/{jobId}" &[], &[];
    Iot "DescribeJob" GET "/jobs/{jobId}" &[("beforeSubstitution", "beforeSubstitution")], &[];
    Iot "UpdateJob" PATCH "/jobs/{jobId}" &[("namespaceId", "namespaceId")], &[];
    Iot "DeleteJob" DELETE "/jobs/{jobId}" &[("force", "force"), ("namespaceId", "namespaceId")], &[];
    Iot "ListJobs" GET "/jobs" &[
        ("status", "status"), ("targetSelection", "targetSelection"),
        ("maxResults", "maxResults"), ("nextToken", "nextToken"),
        ("thingGroupName", "thingGroupName"), ("thingGroupId", "thingGroupId"),
        ("namespaceId", "namespaceId"),
    ], &[];
    Iot "CancelJob" PUT "/jobs/{jobId}/cancel" &[("force", "force")], &[];
    Iot "GetJobDocument" GET "/jobs/{jobId}/job-document" &[("beforeSubstitution", "beforeSubstitution")], &[];
    Iot "ListJobExecutionsForJob" GET "/jobs/{jobId}/things" &[
        ("status", "status"), ("maxResults", "maxResults"), ("nextToken", "nextToken"),
    ], &[];
    Iot "DescribeJobExecution" GET "/things/{thingName}/jobs/{jobId}" &[("executionNumber", "executionNumber")], &[];
    Iot "ListJobExecutionsForThing" GET "/things/{thingName}/jobs" &[
        ("status", "status"), ("namespaceId", "namespaceId"), ("maxResults", "maxResults"),
        ("nextToken", "nextToken"), ("jobId", "jobId"),
    ], &[];
    Iot "CancelJobExecution" PUT "/things/{thingName}/jobs/{jobId}/cancel" &[("force", "force")], &[];
    Iot "DeleteJobExecution" DELETE "/things/{thingName}/jobs/{jobId}/executionNumber/{executionNumber}" &[
        ("force", "force"), ("namespaceId", "namespaceId"),
    ], &[];
    IotData "GetThingShadow" GET "/things/{thingName}/shadow" &[("name", "shadowName")], &[];
    IotData "UpdateThingShadow" POST "/things/{thingName}/shadow" &[("name", "shadowName")], &[];
    IotData "DeleteThingShadow" DELETE "/things/{thingName}/shadow" &[("name", "shadowName")], &[];
    IotData "ListNamedShadowsForThing" GET "/api/things/shadow/ListNamedShadowsForThing/{thingName}" &[
        ("nextToken", "nextToken"), ("pageSize", "pageSize"),
    ], &[];
    IotData "Publish" POST "/topics/{topic}" &[
        ("qos", "qos"), ("retain", "retain"), ("contentType", "contentType"),
        ("responseTopic", "responseTopic"), ("messageExpiry", "messageExpiry"),
    ], &[
        ("x-amz-mqtt5-user-properties", "userProperties"),
        ("x-amz-mqtt5-payload-format-indicator", "payloadFormatIndicator"),
        ("x-amz-mqtt5-correlation-data", "correlationData"),
    ];
    IotData "ListRetainedMessages" GET "/retainedMessage" PAGE, &[];
    IotData "GetRetainedMessage" GET "/retainedMessage/{topic}" &[], &[];
    Greengrass "BatchAssociateClientDeviceWithCoreDevice" POST "/greengrass/v2/coreDevices/{coreDeviceThingName}/associateClientDevices" &[], &[];
    Greengrass "BatchDisassociateClientDeviceFromCoreDevice" POST "/greengrass/v2/coreDevices/{coreDeviceThingName}/disassociateClientDevices" &[], &[];
    Greengrass "ListClientDevicesAssociatedWithCoreDevice" GET "/greengrass/v2/coreDevices/{coreDeviceThingName}/associatedClientDevices" PAGE, &[];
    GreengrassV1 "UpdateConnectivityInfo" PUT "/greengrass/things/{ThingName}/connectivityInfo" &[], &[];
    GreengrassV1 "GetConnectivityInfo" GET "/greengrass/things/{ThingName}/connectivityInfo" &[], &[];
    Discovery "Discover" GET "/greengrass/discover/thing/{thingName}" &[], &[];
};

/// The route table of [`ROUTES`]: each route's id is its index there.
pub(crate) fn route_table() -> RouteTable<usize> {
    RouteTable::new(
        ROUTES
            .iter()
            .enumerate()
            .map(|(index, route)| (route.method.clone(), route.path, index)),
    )
    .expect("the operation table's templates are valid and distinct")
}

/// The members of `route`'s input that the request's labels, `query`
/// (decoded pairs) and `headers` carry, as strings.
pub(crate) fn members(
    route: &Route,
    labels: &Labels,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Map<String, Value>, ControlError> {
    let mut members: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    for (param, member) in route.query {
        if let Some((_, value)) = query.iter().find(|(k, _)| k == param) {
            members.insert((*member).to_owned(), Value::String(value.clone()));
        }
    }
    for (header, member) in route.headers {
        if let Some(value) = headers.get(*header) {
            let value = value.to_str().map_err(|_| {
                ControlError::invalid(format!("header {header} is not visible ASCII"))
            })?;
            members.insert((*member).to_owned(), Value::String(value.to_owned()));
        }
    }
    Ok(members)
}

/// What an operation answers: its body (JSON, or a raw shadow document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn json(value: &impl Serialize) -> Result<Reply, ControlError> {
        serde_json::to_vec(value)
            .map(|body| Reply { body })
            .map_err(|e| ControlError::new(ErrorCode::InternalFailure, e.to_string()))
    }
}

/// Runs `route`'s operation with the `members` from the request's path,
/// query and headers, and `body`.
pub(crate) async fn invoke(
    control: &Control,
    data: &DataPlane,
    route: &Route,
    members: Map<String, Value>,
    body: Bytes,
) -> Result<Reply, ControlError> {
    match route.service {
        Service::Iot if route.operation == "TestInvokeAuthorizer" => {
            // Async: it runs the authorizer's command.
            let request = serde_json::from_value(json_input(members, &body)?)
                .map_err(|e| ControlError::invalid(format!("invalid request: {e}")))?;
            Reply::json(&control.test_invoke_authorizer(request).await?)
        }
        Service::Iot | Service::Greengrass | Service::GreengrassV1 => {
            let input = json_input(members, &body)?;
            let control = control.clone();
            let operation = route.operation;
            tokio::task::spawn_blocking(move || control_operation(&control, operation, input))
                .await
                .map_err(|e| ControlError::new(ErrorCode::InternalFailure, e.to_string()))?
        }
        Service::IotData => data_operation(data, route.operation, &members, body).await,
        Service::Discovery => Err(ControlError::new(
            ErrorCode::UnknownOperation,
            "discovery is answered by the API's handler, with the caller's certificate",
        )),
    }
}

/// The members of an `iot` operation: the JSON body's, then labels, query
/// and headers (which win).
fn json_input(members: Map<String, Value>, body: &[u8]) -> Result<Value, ControlError> {
    let mut input = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ControlError::invalid(
                    "the request body is not a JSON object",
                ));
            }
            Err(e) => {
                return Err(ControlError::invalid(format!(
                    "the request body is not valid JSON: {e}"
                )));
            }
        }
    };
    input.extend(members);
    Ok(Value::Object(input))
}

/// Deserializes `input` as `Req`, calls `op`, serializes its answer.
fn call<Req: DeserializeOwned, Resp: Serialize>(
    input: Value,
    op: impl FnOnce(Req) -> Result<Resp, ControlError>,
) -> Result<Reply, ControlError> {
    let request: Req = serde_json::from_value(input)
        .map_err(|e| ControlError::invalid(format!("invalid request: {e}")))?;
    Reply::json(&op(request)?)
}

/// Like [`call`] for operations that answer nothing: `{}`.
fn call_unit<Req: DeserializeOwned>(
    input: Value,
    op: impl FnOnce(Req) -> Result<(), ControlError>,
) -> Result<Reply, ControlError> {
    call(input, |request| op(request).map(|()| Map::new()))
}

fn control_operation(c: &Control, operation: &str, input: Value) -> Result<Reply, ControlError> {
    match operation {
        "CreateThing" => call(input, |r| c.create_thing(r)),
        "DescribeThing" => call(input, |r| c.describe_thing(r)),
        "UpdateThing" => call_unit(input, |r| c.update_thing(r)),
        "DeleteThing" => call_unit(input, |r| c.delete_thing(r)),
        "ListThings" => call(input, |r| c.list_things(r)),
        "CreateThingType" => call(input, |r| c.create_thing_type(r)),
        "DescribeThingType" => call(input, |r| c.describe_thing_type(r)),
        "DeleteThingType" => call_unit(input, |r| c.delete_thing_type(r)),
        "DeprecateThingType" => call_unit(input, |r| c.deprecate_thing_type(r)),
        "ListThingTypes" => call(input, |r| c.list_thing_types(r)),
        "CreateThingGroup" => call(input, |r| c.create_thing_group(r)),
        "DescribeThingGroup" => call(input, |r| c.describe_thing_group(r)),
        "DeleteThingGroup" => call_unit(input, |r| c.delete_thing_group(r)),
        "ListThingGroups" => call(input, |r| c.list_thing_groups(r)),
        "AddThingToThingGroup" => call_unit(input, |r| c.add_thing_to_thing_group(r)),
        "RemoveThingFromThingGroup" => call_unit(input, |r| c.remove_thing_from_thing_group(r)),
        "ListThingsInThingGroup" => call(input, |r| c.list_things_in_thing_group(r)),
        "ListThingGroupsForThing" => call(input, |r| c.list_thing_groups_for_thing(r)),
        "CreateKeysAndCertificate" => call(input, |r| c.create_keys_and_certificate(r)),
        "CreateCertificateFromCsr" => call(input, |r| c.create_certificate_from_csr(r)),
        "RegisterCertificate" => call(input, |r| c.register_certificate(r)),
        "RegisterCertificateWithoutCA" => call(input, |r| c.register_certificate_without_ca(r)),
        "DescribeCertificate" => call(input, |r| c.describe_certificate(r)),
        "UpdateCertificate" => call_unit(input, |r| c.update_certificate(r)),
        "DeleteCertificate" => call_unit(input, |r| c.delete_certificate(r)),
        "ListCertificates" => call(input, |r| c.list_certificates(r)),
        "CreatePolicy" => call(input, |r| c.create_policy(r)),
        "GetPolicy" => call(input, |r| c.get_policy(r)),
        "DeletePolicy" => call_unit(input, |r| c.delete_policy(r)),
        "ListPolicies" => call(input, |r| c.list_policies(r)),
        "CreateAuthorizer" => call(input, |r| c.create_authorizer(r)),
        "DescribeAuthorizer" => call(input, |r| c.describe_authorizer(r)),
        "UpdateAuthorizer" => call(input, |r| c.update_authorizer(r)),
        "DeleteAuthorizer" => call_unit(input, |r| c.delete_authorizer(r)),
        "ListAuthorizers" => call(input, |r| c.list_authorizers(r)),
        "SetDefaultAuthorizer" => call(input, |r| c.set_default_authorizer(r)),
        "DescribeDefaultAuthorizer" => call(input, |r| c.describe_default_authorizer(r)),
        "CreatePolicyVersion" => call(input, |r| c.create_policy_version(r)),
        "ListPolicyVersions" => call(input, |r| c.list_policy_versions(r)),
        "GetPolicyVersion" => call(input, |r| c.get_policy_version(r)),
        "DeletePolicyVersion" => call_unit(input, |r| c.delete_policy_version(r)),
        "SetDefaultPolicyVersion" => call_unit(input, |r| c.set_default_policy_version(r)),
        "AttachPolicy" => call_unit(input, |r| c.attach_policy(r)),
        "DetachPolicy" => call_unit(input, |r| c.detach_policy(r)),
        "ListAttachedPolicies" => call(input, |r| c.list_attached_policies(r)),
        "ListTargetsForPolicy" => call(input, |r| c.list_targets_for_policy(r)),
        "AttachThingPrincipal" => call_unit(input, |r| c.attach_thing_principal(r)),
        "DetachThingPrincipal" => call_unit(input, |r| c.detach_thing_principal(r)),
        "ListThingPrincipals" => call(input, |r| c.list_thing_principals(r)),
        "ListPrincipalThings" => call(input, |r| c.list_principal_things(r)),
        "DescribeEndpoint" => call(input, |r| c.describe_endpoint(r)),
        "CreateProvisioningTemplate" => call(input, |r| c.create_provisioning_template(r)),
        "ListProvisioningTemplates" => call(input, |r| c.list_provisioning_templates(r)),
        "DescribeProvisioningTemplate" => call(input, |r| c.describe_provisioning_template(r)),
        "UpdateProvisioningTemplate" => call_unit(input, |r| c.update_provisioning_template(r)),
        "DeleteProvisioningTemplate" => call_unit(input, |r| c.delete_provisioning_template(r)),
        "CreateJob" => call(input, |r| c.create_job(r)),
        "DescribeJob" => call(input, |r| c.describe_job(r)),
        "UpdateJob" => call_unit(input, |r| c.update_job(r)),
        "DeleteJob" => call_unit(input, |r| c.delete_job(r)),
        "ListJobs" => call(input, |r| c.list_jobs(r)),
        "CancelJob" => call(input, |r| c.cancel_job(r)),
        "GetJobDocument" => call(input, |r| c.get_job_document(r)),
        "ListJobExecutionsForJob" => call(input, |r| c.list_job_executions_for_job(r)),
        "DescribeJobExecution" => call(input, |r| c.describe_job_execution(r)),
        "ListJobExecutionsForThing" => call(input, |r| c.list_job_executions_for_thing(r)),
        "CancelJobExecution" => call_unit(input, |r| c.cancel_job_execution(r)),
        "DeleteJobExecution" => call_unit(input, |r| c.delete_job_execution(r)),
        "BatchAssociateClientDeviceWithCoreDevice" => call(input, |r| {
            c.batch_associate_client_device_with_core_device(r)
        }),
        "BatchDisassociateClientDeviceFromCoreDevice" => call(input, |r| {
            c.batch_disassociate_client_device_from_core_device(r)
        }),
        "ListClientDevicesAssociatedWithCoreDevice" => call(input, |r| {
            c.list_client_devices_associated_with_core_device(r)
        }),
        "UpdateConnectivityInfo" => call(input, |r| c.update_connectivity_info(r)),
        "GetConnectivityInfo" => call(input, |r| c.get_connectivity_info(r)),
        other => Err(ControlError::new(
            ErrorCode::UnknownOperation,
            format!("operation {other} is not served"),
        )),
    }
}

/// A string member of a data-plane request.
fn member<'m>(members: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
    members.get(name).and_then(Value::as_str)
}

/// An integer member given as a decimal string.
fn int_member(members: &Map<String, Value>, name: &str) -> Result<Option<i64>, ControlError> {
    member(members, name)
        .map(|v| {
            v.parse()
                .map_err(|_| ControlError::invalid(format!("{name} {v:?} is not an integer")))
        })
        .transpose()
}

async fn data_operation(
    data: &DataPlane,
    operation: &str,
    m: &Map<String, Value>,
    body: Bytes,
) -> Result<Reply, ControlError> {
    let thing = member(m, "thingName").unwrap_or_default();
    let shadow = member(m, "shadowName");
    match operation {
        "GetThingShadow" => Ok(Reply {
            body: data.get_thing_shadow(thing, shadow).await?,
        }),
        "UpdateThingShadow" => Ok(Reply {
            body: data.update_thing_shadow(thing, shadow, &body).await?,
        }),
        "DeleteThingShadow" => Ok(Reply {
            body: data.delete_thing_shadow(thing, shadow).await?,
        }),
        "ListNamedShadowsForThing" => Reply::json(&data.list_named_shadows_for_thing(
            thing,
            member(m, "nextToken"),
            int_member(m, "pageSize")?,
        )?),
        "Publish" => {
            data.publish(publish_request(m, body)?).await?;
            Ok(Reply { body: Vec::new() })
        }
        "GetRetainedMessage" => {
            Reply::json(&data.get_retained_message(member(m, "topic").unwrap_or_default())?)
        }
        "ListRetainedMessages" => Reply::json(
            &data.list_retained_messages(member(m, "nextToken"), int_member(m, "maxResults")?)?,
        ),
        other => Err(ControlError::new(
            ErrorCode::UnknownOperation,
            format!("operation {other} is not served"),
        )),
    }
}

/// Publish's members: the topic label, the query string, the base64
/// `x-amz-mqtt5-*` headers (user properties are base64 of a JSON array of
/// one-entry objects, as AWS's SDKs send them).
fn publish_request(m: &Map<String, Value>, body: Bytes) -> Result<PublishRequest, ControlError> {
    let base64 = |name: &str| -> Result<Option<Vec<u8>>, ControlError> {
        member(m, name)
            .map(|v| {
                BASE64
                    .decode(v)
                    .map_err(|_| ControlError::invalid(format!("{name} is not base64")))
            })
            .transpose()
    };
    let user_properties = match base64("userProperties")? {
        None => Vec::new(),
        Some(json) => {
            let invalid = |e: serde_json::Error| {
                ControlError::invalid(format!(
                    "userProperties is not a JSON array of objects: {e}"
                ))
            };
            // botocore JSON-encodes the value it is given: the AWS CLI's
            // `--user-properties '[{"k":"v"}]'` arrives as a JSON string
            // holding the array, boto3's list as the array itself.
            let value: Value = match serde_json::from_slice(&json).map_err(invalid)? {
                Value::String(text) => serde_json::from_str(&text).map_err(invalid)?,
                value => value,
            };
            let entries: Vec<Map<String, Value>> =
                serde_json::from_value(value).map_err(invalid)?;
            let mut pairs = Vec::new();
            for entry in entries {
                for (k, v) in entry {
                    let v = v.as_str().ok_or_else(|| {
                        ControlError::invalid("userProperties values must be strings")
                    })?;
                    pairs.push((k, v.to_owned()));
                }
            }
            pairs
        }
    };
    let retain = match member(m, "retain") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(ControlError::invalid(format!(
                "retain {v:?} is not a boolean"
            )));
        }
    };
    Ok(PublishRequest {
        topic: member(m, "topic").unwrap_or_default().to_owned(),
        qos: int_member(m, "qos")?,
        retain,
        payload: body,
        user_properties,
        payload_format_indicator: member(m, "payloadFormatIndicator").map(str::to_owned),
        content_type: member(m, "contentType").map(str::to_owned),
        response_topic: member(m, "responseTopic").map(str::to_owned),
        correlation_data: base64("correlationData")?.map(Bytes::from),
        message_expiry: int_member(m, "messageExpiry")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_op(method: Method, path: &str) -> Option<(&'static Route, Map<String, Value>)> {
        let table = route_table();
        let matched = table.find(&method, path).ok()?;
        let route = &ROUTES[*matched.id];
        Some((
            route,
            members(route, &matched.labels, &[], &HeaderMap::new()).unwrap(),
        ))
    }

    #[test]
    fn the_table_builds_and_literal_paths_win_over_labels() {
        let (route, _) = find_op(Method::PUT, "/thing-groups/addThingToThingGroup").unwrap();
        assert_eq!(route.operation, "AddThingToThingGroup");
        let (route, _) = find_op(Method::GET, "/thing-groups/addThingToThingGroup").unwrap();
        assert_eq!(route.operation, "DescribeThingGroup");
    }

    #[test]
    fn labels_are_percent_decoded_single_segments() {
        let (route, m) = find_op(
            Method::POST,
            "/topics/%24aws%2Fthings%2Fx%2Fshadow%2Fupdate",
        )
        .unwrap();
        assert_eq!(route.operation, "Publish");
        assert_eq!(m["topic"], "$aws/things/x/shadow/update");
        assert!(find_op(Method::POST, "/topics/a/b").is_none());
    }

    #[test]
    fn methods_choose_between_operations_on_one_path() {
        for (method, op) in [
            (Method::POST, "CreateThing"),
            (Method::GET, "DescribeThing"),
            (Method::PATCH, "UpdateThing"),
            (Method::DELETE, "DeleteThing"),
        ] {
            assert_eq!(find_op(method, "/things/t1").unwrap().0.operation, op);
        }
        assert!(find_op(Method::PUT, "/things/t1").is_none());
    }

    #[test]
    fn job_paths_reach_their_operations_beside_the_thing_routes() {
        for (method, path, op) in [
            (Method::PUT, "/jobs/j1", "CreateJob"),
            (Method::GET, "/jobs/j1", "DescribeJob"),
            (Method::PATCH, "/jobs/j1", "UpdateJob"),
            (Method::DELETE, "/jobs/j1", "DeleteJob"),
            (Method::GET, "/jobs", "ListJobs"),
            (Method::PUT, "/jobs/j1/cancel", "CancelJob"),
            (Method::GET, "/jobs/j1/job-document", "GetJobDocument"),
            (Method::GET, "/jobs/j1/things", "ListJobExecutionsForJob"),
            (Method::GET, "/things/t1/jobs", "ListJobExecutionsForThing"),
            (Method::GET, "/things/t1/jobs/j1", "DescribeJobExecution"),
            (
                Method::PUT,
                "/things/t1/jobs/j1/cancel",
                "CancelJobExecution",
            ),
            (
                Method::DELETE,
                "/things/t1/jobs/j1/executionNumber/2",
                "DeleteJobExecution",
            ),
            (Method::GET, "/things/t1/principals", "ListThingPrincipals"),
            (Method::GET, "/things/t1/shadow", "GetThingShadow"),
        ] {
            assert_eq!(find_op(method, path).unwrap().0.operation, op, "{path}");
        }
        let (_, m) = find_op(Method::DELETE, "/things/t1/jobs/j1/executionNumber/2").unwrap();
        assert_eq!(m["executionNumber"], "2");
        assert_eq!(m["thingName"], "t1");
        assert_eq!(m["jobId"], "j1");
    }

    #[test]
    fn greengrass_paths_reach_their_operations() {
        for (method, path, op) in [
            (
                Method::POST,
                "/greengrass/v2/coreDevices/c/associateClientDevices",
                "BatchAssociateClientDeviceWithCoreDevice",
            ),
            (
                Method::POST,
                "/greengrass/v2/coreDevices/c/disassociateClientDevices",
                "BatchDisassociateClientDeviceFromCoreDevice",
            ),
            (
                Method::GET,
                "/greengrass/v2/coreDevices/c/associatedClientDevices",
                "ListClientDevicesAssociatedWithCoreDevice",
            ),
            (
                Method::PUT,
                "/greengrass/things/c/connectivityInfo",
                "UpdateConnectivityInfo",
            ),
            (
                Method::GET,
                "/greengrass/things/c/connectivityInfo",
                "GetConnectivityInfo",
            ),
            (Method::GET, "/greengrass/discover/thing/dev1", "Discover"),
        ] {
            assert_eq!(find_op(method, path).unwrap().0.operation, op, "{path}");
        }
        let (_, m) = find_op(Method::PUT, "/greengrass/things/c/connectivityInfo").unwrap();
        assert_eq!(m["ThingName"], "c");
    }

    #[test]
    fn query_and_headers_become_members() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-principal",
            "arn:aws:iot:r:1:cert/ab".parse().unwrap(),
        );
        let query = vec![(
            "thingPrincipalType".to_owned(),
            "EXCLUSIVE_THING".to_owned(),
        )];
        let table = route_table();
        let matched = table.find(&Method::PUT, "/things/t/principals").unwrap();
        let m = members(&ROUTES[*matched.id], &matched.labels, &query, &headers).unwrap();
        assert_eq!(m["principal"], "arn:aws:iot:r:1:cert/ab");
        assert_eq!(m["thingPrincipalType"], "EXCLUSIVE_THING");
        assert_eq!(m["thingName"], "t");
    }

    #[test]
    fn bodies_must_be_json_objects() {
        let err = json_input(Map::new(), b"[1]").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let err = json_input(Map::new(), b"{").unwrap_err();
        assert!(err.message().contains("not valid JSON"), "{err}");
        assert_eq!(
            json_input(Map::new(), b"  ").unwrap(),
            Value::Object(Map::new())
        );
    }

    #[test]
    fn unknown_members_are_invalid_requests() {
        let input = serde_json::json!({"thingName": "t", "bogus": 1});
        let err = call(input, |_: crate::control::DescribeThingRequest| {
            Ok::<_, ControlError>(())
        })
        .unwrap_err();
        assert!(err.message().contains("bogus"), "{err}");
    }

    #[test]
    fn publish_headers_are_decoded() {
        let mut m = Map::new();
        m.insert("topic".into(), "a/b".into());
        m.insert("qos".into(), "1".into());
        m.insert("retain".into(), "true".into());
        m.insert(
            "userProperties".into(),
            BASE64.encode(r#"[{"k1":"v1"},{"k2":"v2"}]"#).into(),
        );
        let request = publish_request(&m, Bytes::from_static(b"hi")).unwrap();
        assert_eq!(request.qos, Some(1));
        assert!(request.retain);
        assert_eq!(
            request.user_properties,
            [("k1".into(), "v1".into()), ("k2".into(), "v2".into())]
        );
        let cli_form = serde_json::to_string(r#"[{"k1":"v1"}]"#).unwrap();
        m.insert("userProperties".into(), BASE64.encode(cli_form).into());
        let request = publish_request(&m, Bytes::new()).unwrap();
        assert_eq!(request.user_properties, [("k1".into(), "v1".into())]);
        m.insert("retain".into(), "maybe".into());
        assert!(publish_request(&m, Bytes::new()).is_err());
    }
}
