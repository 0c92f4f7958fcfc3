//! Tracing output for tests.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber that writes through the test harness's captured output.
///
/// The filter comes from `RUST_LOG` (for example `RUST_LOG=iotcore=trace`), `info` when unset.
/// Safe to call from every test: only the first call in a process installs anything, and it does
/// nothing if another global subscriber is already set.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        // Another crate's test may have installed a global subscriber first; keep theirs.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
