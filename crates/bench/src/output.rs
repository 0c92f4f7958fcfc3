//! Where a report goes: `bench/results/<date>.json`, `<date>.md` and `<date>.svg`,
//! and, for a full run, the "Latest `iotcore bench`" section of BENCHMARKS.md.

use std::path::{Path, PathBuf};

use crate::error::{BenchResult, Context};
use crate::report::Report;
use crate::{markdown, plot};

/// Marks the start of the section of BENCHMARKS.md that a full run rewrites.
pub const SECTION_START: &str = "<!-- iotcore bench: start -->";
/// Marks its end.
pub const SECTION_END: &str = "<!-- iotcore bench: end -->";

/// The files a report was written to.
#[derive(Debug, Clone)]
pub struct Written {
    /// The figures as JSON.
    pub json: PathBuf,
    /// The tables.
    pub markdown: PathBuf,
    /// The plot, unless there was nothing to plot.
    pub svg: Option<PathBuf>,
    /// BENCHMARKS.md, when it was updated.
    pub benchmarks: Option<PathBuf>,
}

/// Writes the report under `results` (created if needed) as `<stem>.json`, `.md`
/// and `.svg`, where the stem is the run's date (`2026-11-26`, with `-quick` for a
/// quick run); with `benchmarks`, also replaces that file's bench section.
pub fn write(report: &Report, results: &Path, benchmarks: Option<&Path>) -> BenchResult<Written> {
    std::fs::create_dir_all(results).during(format!("creating {}", results.display()))?;
    let day = report
        .environment
        .date
        .split_whitespace()
        .next()
        .filter(|d| !d.is_empty() && *d != "?")
        .unwrap_or("undated");
    let stem = if report.quick {
        format!("{day}-quick")
    } else {
        day.to_owned()
    };
    let json = results.join(format!("{stem}.json"));
    let text = serde_json::to_string_pretty(report).during("encoding the report")?;
    write_file(&json, &(text + "\n"))?;

    let svg = match plot::svg(report) {
        Ok(picture) => {
            let path = results.join(format!("{stem}.svg"));
            write_file(&path, &picture)?;
            Some(path)
        }
        Err(error) => {
            tracing::warn!(%error, "no plot");
            None
        }
    };
    let markdown_path = results.join(format!("{stem}.md"));
    let svg_name = svg
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    write_file(
        &markdown_path,
        &markdown::render(report, svg_name.as_deref()),
    )?;

    let benchmarks = match benchmarks {
        Some(file) => {
            let relative = svg.as_ref().map(|p| relative_to(p, file));
            let section = markdown::render(report, relative.as_deref());
            replace_section(file, &section)?;
            Some(file.to_owned())
        }
        None => None,
    };
    Ok(Written {
        json,
        markdown: markdown_path,
        svg,
        benchmarks,
    })
}

fn write_file(path: &Path, text: &str) -> BenchResult<()> {
    std::fs::write(path, text).during(format!("writing {}", path.display()))
}

/// `path` as a link from the directory of `from` (both under the same root).
fn relative_to(path: &Path, from: &Path) -> String {
    let base = from.parent().unwrap_or(Path::new(""));
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Replaces the text between [`SECTION_START`] and [`SECTION_END`] in `file`, or
/// appends the marked section when the file has none.
fn replace_section(file: &Path, section: &str) -> BenchResult<()> {
    let text = std::fs::read_to_string(file).during(format!("reading {}", file.display()))?;
    let marked = format!("{SECTION_START}\n{section}{SECTION_END}");
    let updated = match (text.find(SECTION_START), text.find(SECTION_END)) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}{marked}{}",
                &text[..start],
                &text[end + SECTION_END.len()..]
            )
        }
        _ => format!("{}\n\n{marked}\n", text.trim_end()),
    };
    write_file(file, &updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("BENCHMARKS.md");
        std::fs::write(&file, "# Benchmarks\n\nintro\n").unwrap();
        replace_section(&file, "first\n").unwrap();
        let once = std::fs::read_to_string(&file).unwrap();
        assert!(
            once.starts_with("# Benchmarks\n\nintro\n\n<!-- iotcore bench: start -->\nfirst\n")
        );
        std::fs::write(&file, once.replace("intro", "intro\n\n## Later\n")).unwrap();
        replace_section(&file, "second\n").unwrap();
        let twice = std::fs::read_to_string(&file).unwrap();
        assert!(twice.contains("start -->\nsecond\n<!-- iotcore bench: end -->"));
        assert!(!twice.contains("first"));
        assert!(twice.contains("## Later"));
    }

    #[test]
    fn links_are_relative_to_the_markdown_file() {
        let root = Path::new("/repo");
        assert_eq!(
            relative_to(
                &root.join("bench/results/x.svg"),
                &root.join("BENCHMARKS.md")
            ),
            "bench/results/x.svg"
        );
    }
}
