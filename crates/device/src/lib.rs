//! iotcore: a device SDK for AWS IoT Core.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
