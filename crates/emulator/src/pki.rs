//! The emulator's local PKI: root CA, server certificate, device certificates.
