//! Shared test support for the iotcore workspace.
