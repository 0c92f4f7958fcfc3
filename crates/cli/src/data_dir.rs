//! Where the emulator keeps its state when `--data-dir` is not given.

use std::path::PathBuf;

/// `explicit` if given, else `$XDG_DATA_HOME/iotcore`, else `~/.local/share/iotcore`,
/// else `./iotcore-data` when no home directory is known.
pub fn resolve(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir;
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("iotcore");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/iotcore");
    }
    PathBuf::from("iotcore-data")
}
