//! Sans-IO models of AWS IoT Core's services, shared by the device SDK and the
//! emulator: reserved topic builders and parsers, and the JSON messages of the
//! shadow, jobs, provisioning and discovery services.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
