//! iotcore-emulator: a local AWS IoT Core for tests and development.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
