//! Registry and broker state in SQLite.
