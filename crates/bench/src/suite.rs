//! What every part of the suite shares: the options, the emulator under test,
//! identities, progress lines and the peers' versions.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use iotcore_emulator::pki::KeyAlgorithm;

use crate::environment::locked_version;
use crate::error::BenchResult;
use crate::harness::{EmulatorProcess, Identity};
use crate::report::Group;

/// How `iotcore bench` runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// A short smoke run: one run per figure, a twentieth of the messages.
    pub quick: bool,
    /// The parts to run (all when empty).
    pub only: Vec<Group>,
    /// Runs per figure in a full run.
    pub runs: usize,
    /// The `iotcore` binary to start as `iotcore emulator` (and whose size is measured).
    pub iotcore: PathBuf,
    /// The command line to record in the report.
    pub command: String,
}

impl Options {
    /// Whether `group` is part of this run.
    pub fn includes(&self, group: Group) -> bool {
        self.only.is_empty() || self.only.contains(&group)
    }

    /// Whether every part runs at full size (only such a run updates BENCHMARKS.md).
    pub fn is_full(&self) -> bool {
        !self.quick && Group::ALL.iter().all(|g| self.includes(*g))
    }
}

/// `--quick` divides message counts by this.
const QUICK_SCALE: usize = 20;

/// The state a part of the suite runs with.
pub struct Suite {
    options: Options,
    emulator: EmulatorProcess,
    peers: Mutex<BTreeSet<String>>,
}

impl Suite {
    /// A suite measuring `emulator`.
    pub fn new(options: Options, emulator: EmulatorProcess) -> Suite {
        Suite {
            options,
            emulator,
            peers: Mutex::new(BTreeSet::new()),
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The emulator under test (`iotcore emulator`, its own process).
    pub fn emulator(&self) -> &EmulatorProcess {
        &self.emulator
    }

    /// Runs per figure: 1 in a quick run.
    pub fn runs(&self) -> usize {
        if self.options.quick {
            1
        } else {
            self.options.runs
        }
    }

    /// What message counts are divided by: [`QUICK_SCALE`] in a quick run, else 1.
    pub fn scale(&self) -> usize {
        if self.options.quick { QUICK_SCALE } else { 1 }
    }

    /// Registers thing `name` (ECDSA P-256 key) in the emulator and writes its files.
    pub fn identity(&self, name: &str) -> BenchResult<Identity> {
        self.emulator.identity(name, KeyAlgorithm::EcdsaP256)
    }

    /// Prints a progress line on stderr.
    pub fn progress(&self, line: &str) {
        eprintln!(
            "iotcore bench: {line} (load {})",
            crate::environment::load_average()
        );
    }

    /// `<crate> <version>` for a Rust peer (from Cargo.lock), remembered for the report.
    pub fn version_of(&self, package: &str) -> String {
        let name = locked_version(package)
            .map_or_else(|| package.to_owned(), |v| format!("{package} {v}"));
        self.note_peer(&name);
        name
    }

    /// Remembers a peer's name and version for the report's environment.
    pub fn note_peer(&self, name: &str) {
        if let Ok(mut peers) = self.peers.lock() {
            peers.insert(name.to_owned());
        }
    }

    /// Every peer noted, sorted; stops the emulator.
    pub async fn finish(self) -> Vec<String> {
        self.emulator.stop().await;
        self.peers
            .into_inner()
            .map(|p| p.into_iter().collect())
            .unwrap_or_default()
    }
}
