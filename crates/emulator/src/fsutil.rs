//! Atomic file writes with restrictive permissions.
