//! The `iotcore` command.
fn main() {}
