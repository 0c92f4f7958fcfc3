//! The emulator's data directory as the CLI uses it: where the emulator keeps
//! its state when `--data-dir` is not given, and the one way the CLI opens the
//! control plane on it.

use std::path::{Path, PathBuf};

use iotcore_emulator::control::{Control, ControlError};
use iotcore_emulator::policy::ArnScope;

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

/// A data directory and the region and account (`--region`, `--account-id`)
/// the emulator's resources are named in there.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
    scope: ArnScope,
}

impl DataDir {
    /// The data directory `path`, resources named in `scope`.
    pub fn new(path: PathBuf, scope: ArnScope) -> DataDir {
        DataDir { path, scope }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The region and account resource ARNs name.
    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// The control plane of this data directory: AWS's registry operations,
    /// whether an emulator runs on it or not (a running one picks the changes
    /// up from the registry).
    pub fn control(&self) -> Result<Control, ControlError> {
        Control::open(&self.path, self.scope.clone())
    }
}
