//! The emulator's HTTPS API: AWS IoT's control plane (`iot`), HTTP data
//! plane (`iot-data`) and Greengrass's (`greengrassv2`, `greengrass`) as the
//! AWS CLI, boto3 and the AWS SDKs call them with
//! `--endpoint-url https://localhost:<api-port>`, and Greengrass discovery.
//!
//! This module is the HTTP side only; the operations live in the control layer.
//!
//! * `error`: AWS's rest-json error wire format (`x-amzn-ErrorType` + JSON body).
//! * `server`: the HTTPS listener (hyper over tokio-rustls, HTTP/1.1 and
//!   HTTP/2), authentication of every request (a client certificate issued by
//!   the emulator CA, or SigV4), the body limit, and the `Handler` the
//!   control layer implements.
//! * `sigv4`: SigV4 verification (header and presigned-query forms) through
//!   the `aws-sigv4` crate.
//! * `route`: the route table from method and raw path to an operation.
//! * `operations`: AWS's REST binding of each operation (method, path, query,
//!   headers, body) and the call into the control layer or the data plane.
//! * `handler`: who may call what, and AWS's answers.
//! * `discovery`: Greengrass discovery's answers for a device certificate.
//! * `query`, `tls`: query-string decoding and the listener's TLS configuration.
//! * [`client`]: a signed client of the API, for the CLI and tests.

use bytes::Bytes;
use http_body_util::Full;

pub mod client;
pub(crate) mod discovery;
pub(crate) mod error;
pub(crate) mod handler;
pub(crate) mod operations;
pub(crate) mod query;
pub(crate) mod route;
pub(crate) mod server;
pub(crate) mod sigv4;
pub(crate) mod tls;

/// A response of the API: status, headers and a body held in memory.
pub(crate) type ApiResponse = http::Response<Full<Bytes>>;

/// The response header carrying the request id (botocore reports it as
/// `ResponseMetadata.RequestId`).
pub(crate) const REQUEST_ID_HEADER: &str = "x-amzn-requestid";
