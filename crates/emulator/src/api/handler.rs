//! What the API server does with an authenticated request: find the
//! operation, check that the caller may call it, run it, and answer in AWS's
//! wire format.
//!
//! * A SigV4 caller (an access key from `iotcore credentials create`) may
//!   call every operation but discovery, signed for the operation's service:
//!   `iot` (or the older `execute-api`) for the control plane, `iotdata` for
//!   the data plane, `greengrass` for Greengrass's.
//! * A device (a client certificate) may only publish, as on AWS's port 8443:
//!   its certificate must be ACTIVE and its IoT policies must allow
//!   `iot:Publish` (and `iot:RetainPublish` for a retained message) on the
//!   topic, as for an MQTT publish; and discover its Greengrass core devices
//!   (see [`super::discovery`]).

use std::future::Future;
use std::pin::Pin;

use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};

use super::ApiResponse;
use super::discovery;
use super::error::AwsError;
use super::operations::{ROUTES, Route, Service, invoke, members, route_table};
use super::route::{NoRoute, RouteTable};
use super::server::{ApiRequest, Caller, Handler};
use crate::control::{
    CertificateStatus, Control, ControlError, ListPrincipalThingsRequest, greengrass_error_name,
};
use crate::data_plane::DataPlane;
use crate::policy::{Action, Reason};

/// The API's operations over a running emulator's control and data planes.
#[derive(Debug)]
pub(crate) struct Operations {
    routes: RouteTable<usize>,
    control: Control,
    data: DataPlane,
    /// Answer Greengrass discovery only (the discovery port).
    discovery_only: bool,
}

impl Operations {
    /// The operations of `control` and `data`.
    pub(crate) fn new(control: Control, data: DataPlane) -> Operations {
        Operations {
            routes: route_table(),
            control,
            data,
            discovery_only: false,
        }
    }

    /// These operations answering Greengrass discovery only: every other
    /// path is unknown (404).
    pub(crate) fn discovery_only(mut self) -> Operations {
        self.discovery_only = true;
        self
    }

    /// Answers one authenticated request.
    pub(crate) async fn answer(&self, request: ApiRequest) -> ApiResponse {
        let request_id = request.request_id.clone();
        match self.run(request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(
                    request_id,
                    status = error.status().as_u16(),
                    code = error.code(),
                    message = error.message(),
                    "API request refused"
                );
                error.into_response()
            }
        }
    }

    async fn run(&self, request: ApiRequest) -> Result<ApiResponse, AwsError> {
        let matched = self
            .routes
            .find(&request.method, &request.raw_path)
            .map_err(|no| no.into_aws_error(&request.method, &request.raw_path))?;
        let route = &ROUTES[*matched.id];
        if self.discovery_only && route.service != Service::Discovery {
            return Err(NoRoute::NotFound.into_aws_error(&request.method, &request.raw_path));
        }
        let members = members(route, &matched.labels, &request.query, &request.headers)
            .map_err(|e| aws_error(route.service, e))?;
        if route.service == Service::Discovery {
            let Caller::Certificate { certificate_id } = &request.caller else {
                return Err(forbidden(
                    "Greengrass discovery authenticates with the device's client certificate,                      not a signature"
                        .to_owned(),
                ));
            };
            let thing = members
                .get("thingName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return discovery::answer(&self.control, certificate_id, thing, request.peer).await;
        }
        match &request.caller {
            Caller::Credentials {
                signing_name,
                access_key_id,
                ..
            } => {
                check_service(route, signing_name)?;
                self.check_key_policy(route, &members, access_key_id, &request)
                    .await?;
            }
            Caller::Certificate { certificate_id } => {
                self.check_device_publish(route, &members, certificate_id, &request)
                    .await?;
            }
        }
        tracing::debug!(operation = route.operation, "API request");
        let reply = invoke(&self.control, &self.data, route, members, request.body)
            .await
            .map_err(|e| aws_error(route.service, e))?;
        let mut response = http::Response::new(reply.body.into());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }

    /// An access key issued with a policy may call what that policy allows:
    /// action `iot:<Operation>` on the ARN of the resource the call names.
    async fn check_key_policy(
        &self,
        route: &Route,
        members: &Map<String, Value>,
        access_key_id: &str,
        request: &ApiRequest,
    ) -> Result<(), AwsError> {
        let control = self.control.clone();
        let access_key_id = access_key_id.to_owned();
        let ip = request.peer.ip();
        let action = format!("{}:{}", iam_prefix(route.service), route.operation);
        let resource = operation_resource(&self.control, members);
        let verdict = tokio::task::spawn_blocking(move || {
            let Some(record) = control.access_key(&access_key_id)? else {
                return Ok(None);
            };
            let principal = control.access_key_principal(&record, Some(ip))?;
            Ok::<_, ControlError>(
                principal.map(|p| (record.name, p.evaluate_operation(&action, &resource))),
            )
        })
        .await
        .map_err(|e| AwsError::internal_failure(e.to_string()))?
        .map_err(|e| aws_error(route.service, e))?;
        match verdict {
            None | Some((_, Reason::Allowed(_))) => Ok(()),
            Some((name, reason)) => {
                let why = match reason {
                    Reason::ExplicitDeny(statement) => format!("an explicit deny in {statement}"),
                    _ => "no statement of its policy allows it".to_owned(),
                };
                Err(AwsError::new(
                    StatusCode::FORBIDDEN,
                    "AccessDeniedException",
                    format!(
                        "User: {name} is not authorized to perform: {}:{} on resource: {} \
                         because of {why}",
                        iam_prefix(route.service),
                        route.operation,
                        operation_resource(&self.control, members)
                    ),
                ))
            }
        }
    }

    /// A device may only Publish, where its policies allow it.
    async fn check_device_publish(
        &self,
        route: &Route,
        members: &Map<String, Value>,
        certificate_id: &str,
        request: &ApiRequest,
    ) -> Result<(), AwsError> {
        if route.operation != "Publish" {
            return Err(forbidden(format!(
                "a device certificate may only publish (POST /topics/TOPIC) and discover \
                 (GET /greengrass/discover/thing/THING), not call {}",
                route.operation
            )));
        }
        let topic = members
            .get("topic")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let retain = members
            .get("retain")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let control = self.control.clone();
        let certificate_id = certificate_id.to_owned();
        let ip = request.peer.ip();
        let decision = tokio::task::spawn_blocking(move || {
            // The thing the certificate belongs to gives the thing policy variables.
            let thing = control
                .list_principal_things(ListPrincipalThingsRequest {
                    principal: certificate_id.clone(),
                    ..ListPrincipalThingsRequest::default()
                })?
                .things
                .into_iter()
                .next()
                .unwrap_or_default();
            let (principal, status) = control.principal(&certificate_id, &thing, Some(ip))?;
            if status != CertificateStatus::Active {
                return Ok(Err(format!("certificate {certificate_id} is {status}")));
            }
            let mut actions = vec![Action::Publish];
            if retain {
                actions.push(Action::RetainPublish);
            }
            for action in actions {
                let decision = principal.evaluate_name(action, &topic);
                if !decision.is_allowed() {
                    return Ok(Err(decision.to_string()));
                }
            }
            Ok::<_, ControlError>(Ok(()))
        })
        .await
        .map_err(|e| AwsError::internal_failure(e.to_string()))?
        .map_err(|e| aws_error(route.service, e))?;
        decision.map_err(|why| {
            tracing::info!(reason = %why, "HTTPS publish refused");
            forbidden(why)
        })
    }
}

impl Handler for Operations {
    fn handle(
        &self,
        request: ApiRequest,
    ) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
        Box::pin(self.answer(request))
    }
}

/// The ARN of the resource a call names, as IAM checks AWS IoT's API calls
/// against: its thing, thing group, thing type, policy, certificate,
/// template, job or topic (an execution's: its thing); `*` for calls that
/// name none (the List operations).
fn operation_resource(control: &Control, members: &Map<String, Value>) -> String {
    const KINDS: [(&str, &str); 11] = [
        ("thingName", "thing"),
        ("ThingName", "thing"),
        ("coreDeviceThingName", "thing"),
        ("authorizerName", "authorizer"),
        ("jobId", "job"),
        ("thingGroupName", "thinggroup"),
        ("thingTypeName", "thingtype"),
        ("policyName", "policy"),
        ("certificateId", "cert"),
        ("templateName", "provisioningtemplate"),
        ("topic", "topic"),
    ];
    KINDS
        .iter()
        .find_map(|(member, kind)| {
            let name = members.get(*member).and_then(Value::as_str)?;
            Some(control.arn(kind, name))
        })
        .unwrap_or_else(|| "*".to_owned())
}

/// The signing names of each service's operations.
fn check_service(route: &Route, signing_name: &str) -> Result<(), AwsError> {
    let (allowed, name): (&[&str], &str) = match route.service {
        Service::Iot => (&["iot", "execute-api"], "iot"),
        Service::IotData => (&["iotdata"], "iotdata"),
        Service::Greengrass | Service::GreengrassV1 | Service::Discovery => {
            (&["greengrass"], "greengrass")
        }
    };
    if allowed.contains(&signing_name) {
        Ok(())
    } else {
        Err(AwsError::invalid_signature(format!(
            "Credential should be scoped to correct service: '{name}'. "
        )))
    }
}

fn forbidden(message: String) -> AwsError {
    AwsError::new(StatusCode::FORBIDDEN, "ForbiddenException", message)
}

/// The service prefix of an operation's IAM action (`iot:CreateThing`,
/// `greengrass:GetConnectivityInfo`).
fn iam_prefix(service: Service) -> &'static str {
    match service {
        Service::Iot | Service::IotData => "iot",
        Service::Greengrass | Service::GreengrassV1 | Service::Discovery => "greengrass",
    }
}

/// A control-layer error in `service`'s wire format, with its extra members:
/// `greengrassv2` names an invalid request `ValidationException`, the
/// `greengrass` V1 model knows only `BadRequestException` (400) and
/// `InternalServerErrorException` (500).
fn aws_error(service: Service, e: ControlError) -> AwsError {
    let status =
        StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match service {
        Service::Iot | Service::IotData => e.code().name(),
        Service::Greengrass | Service::Discovery => greengrass_error_name(&e),
        Service::GreengrassV1 if status.is_server_error() => "InternalServerErrorException",
        Service::GreengrassV1 => {
            return AwsError::new(StatusCode::BAD_REQUEST, "BadRequestException", e.message());
        }
    };
    let mut error = AwsError::new(status, code, e.message());
    if let Some(id) = e.resource_id() {
        error = error.with_field("resourceId", id);
    }
    if let Some(resource_type) = e.resource_type() {
        error = error.with_field("resourceType", resource_type);
    }
    if let Some(arn) = e.resource_arn() {
        error = error.with_field("resourceArn", arn);
    }
    error
}
