//! Runs the shell snippets of the guide book (`docs/`) and of the workspace README, so that
//! what a reader types works; and checks that every chapter is in the book's `SUMMARY.md` and,
//! when it has Rust snippets, compiled as doctests by `iotcore-test-support`.
//!
//! A snippet is run when its fence's info string is `sh,test`:
//!
//! ````text
//! ```sh,test
//! iotcore policy explain --cert dev1 --action iot:Connect --resource client/dev1
//! ```
//! ````
//!
//! mdBook shows such a block as shell code (the `test` class changes nothing), and rustdoc
//! does not take it for Rust. Only fences at the start of a line count. Snippets that need real
//! AWS, a second machine or a server that never ends are left as plain `sh`.
//!
//! Each Markdown file's marked snippets run in order as one bash script (`set -euo pipefail`),
//! in a fresh temporary directory that is also `HOME` and the `iotcore` data directory, with the
//! `iotcore` binary under test first on `PATH`. Background jobs a script starts (`iotcore
//! emulator &`) are ended when it finishes. When the machine allows unprivileged user and
//! network namespaces (`unshare --user --map-root-user --net`), each script runs in a network
//! namespace of its own with only loopback, so the snippets use the emulator's default ports
//! (8883, 8443) as a reader would, beside any other test; otherwise they run on the host, and
//! those ports must be free.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::IOTCORE;

/// The info string that marks a runnable snippet.
const MARKER: &str = "sh,test";

/// How long one file's snippets may run before the test declares them hung.
const SCRIPT_GUARD: Duration = Duration::from_secs(120);

/// The marked snippets of one Markdown file, with the line each starts on.
fn marked_snippets(markdown: &str) -> Vec<(usize, String)> {
    let mut snippets = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for (_, inner) in lines.by_ref() {
            if inner.starts_with("```") {
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        if info.trim() == MARKER {
            snippets.push((number + 1, body));
        }
    }
    snippets
}

/// The Markdown files whose snippets run: the README and every chapter under docs/.
fn sources(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    for dir in [root.join("docs"), root.join("docs/guide")] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// Whether scripts can run in a network namespace of their own (with loopback up).
fn namespaces_work() -> bool {
    Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The script for one file's snippets: each preceded by a line saying where it comes from.
fn script(file: &str, snippets: &[(usize, String)]) -> String {
    let mut script = String::from(
        "set -euo pipefail\n\
         trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n",
    );
    for (line, body) in snippets {
        script.push_str(&format!("echo '### {file}:{line}' >&2\n{body}"));
    }
    script
}

/// Runs `script` in `dir`; its exit status and combined output. Panics if it hangs.
fn run(script: &str, dir: &Path, isolated: bool) -> (bool, String) {
    let path = dir.join("snippets.sh");
    std::fs::write(&path, script).expect("write the script");
    let bin_dir = Path::new(IOTCORE).parent().expect("the binary's directory");
    let path_var = format!(
        "{}:{}:/usr/sbin:/sbin",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = if isolated {
        let mut command = Command::new("unshare");
        command.args(["--user", "--map-root-user", "--net", "sh", "-c"]);
        command.arg(r#"ip link set lo up && exec bash "$0""#);
        command
    } else {
        Command::new("bash")
    };
    let log = dir.join("output.log");
    let out = std::fs::File::create(&log).expect("create the log");
    let mut child = command
        .arg(&path)
        .current_dir(dir)
        .env("PATH", path_var)
        .env("HOME", dir)
        .env("IOTCORE_DATA_DIR", dir.join("iotcore-data"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone the log"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("run bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break status;
        }
        if started.elapsed() > SCRIPT_GUARD {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "the snippets hung for {SCRIPT_GUARD:?}; output so far:\n{}",
                read(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the script left behind in its process group goes too.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    (status.success(), read(&log))
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

#[test]
fn the_books_marked_shell_snippets_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let isolated = namespaces_work();
    eprintln!(
        "book snippets run {}",
        if isolated {
            "in network namespaces of their own"
        } else {
            "on the host network (unshare --net is not allowed here): ports 8883 and 8443 must be free"
        }
    );
    let mut ran = 0;
    let mut failures = Vec::new();
    for file in sources(&root) {
        let markdown = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let snippets = marked_snippets(&markdown);
        if snippets.is_empty() {
            continue;
        }
        let name = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (ok, output) = run(&script(&name, &snippets), dir.path(), isolated);
        eprintln!(
            "{name}: {} snippet(s) {}",
            snippets.len(),
            if ok { "passed" } else { "FAILED" }
        );
        if !ok {
            failures.push(format!("{name}:\n{output}"));
        }
        ran += snippets.len();
    }
    eprintln!("{ran} shell snippet(s) run");
    assert!(
        failures.is_empty(),
        "snippets failed:\n{}",
        failures.join("\n")
    );
    assert!(
        ran > 0,
        "no snippet is marked {MARKER}: the markers are gone"
    );
}

#[test]
fn snippets_are_found_only_behind_the_marker() {
    let markdown =
        "text\n```sh\nnot run\n```\n```sh,test\nrun 1\nrun 2\n```\n```rust\nfn x() {}\n```\n";
    assert_eq!(
        marked_snippets(markdown),
        vec![(5, "run 1\nrun 2\n".to_owned())]
    );
}

#[test]
fn every_chapter_is_in_the_summary_and_its_rust_is_compiled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let summary = std::fs::read_to_string(root.join("docs/SUMMARY.md")).expect("SUMMARY.md");
    let doctests = std::fs::read_to_string(root.join("crates/test-support/src/lib.rs"))
        .expect("test-support's lib.rs");
    let mut problems = Vec::new();
    for file in sources(&root).into_iter().skip(1) {
        if file.ends_with("SUMMARY.md") {
            continue;
        }
        let relative = file
            .strip_prefix(root.join("docs"))
            .expect("a file under docs/")
            .display()
            .to_string();
        if !summary.contains(&format!("]({relative})")) {
            problems.push(format!("docs/{relative} is not in docs/SUMMARY.md"));
        }
        let markdown = std::fs::read_to_string(&file).expect("a chapter");
        let has_rust = markdown.lines().any(|line| line.starts_with("```rust"));
        let included = format!("include_str!(\"../../../docs/{relative}\")");
        if has_rust && !doctests.contains(&included) {
            problems.push(format!(
                "docs/{relative} has Rust snippets but no #[cfg(doctest)] item in crates/test-support/src/lib.rs"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
