//! Primitive readers and writers shared by the packet modules: variable byte
//! integers, two-byte-length strings and binary data, and properties.
