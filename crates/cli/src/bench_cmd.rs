//! `iotcore bench`: the benchmark suite (crate iotcore-bench), its result files
//! and the BENCHMARKS.md section.

use std::path::PathBuf;

use clap::Args;
use iotcore_bench::{Group, Options, output};

use crate::CliResult;

/// Options of `iotcore bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A short smoke run: one run per figure, a twentieth of the messages (its
    /// files are named DATE-quick and BENCHMARKS.md is left alone).
    #[arg(long)]
    quick: bool,
    /// Run only these parts (repeatable): client-throughput, broker-throughput,
    /// latency, connect-cost, websocket, footprint. BENCHMARKS.md is then left alone.
    #[arg(long, value_parser = parse_group)]
    only: Vec<Group>,
    /// Runs per figure; the tables report the median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    runs: u16,
    /// Where to write DATE.json, DATE.md and DATE.svg (default:
    /// bench/results in the source tree this binary was built from).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Do not update BENCHMARKS.md, even after a full run.
    #[arg(long)]
    no_update: bool,
    /// Internal: run as the footprint part's child process (request on stdin, answer on
    /// stdout); the suite starts this binary so.
    #[arg(long, hide = true, value_name = "MODE")]
    child: Option<String>,
}

fn parse_group(name: &str) -> Result<Group, String> {
    Group::ALL
        .into_iter()
        .find(|g| g.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
            format!("unknown part {name:?}; one of {}", names.join(", "))
        })
}

/// Runs the suite and writes its files.
pub fn run(args: BenchArgs) -> CliResult {
    if let Some(mode) = &args.child {
        println!("{}", iotcore_bench::child::main(mode)?);
        return Ok(());
    }
    let root = iotcore_bench::workspace_root();
    let options = Options {
        quick: args.quick,
        only: args.only,
        runs: usize::from(args.runs),
        iotcore: std::env::current_exe()?,
        command: command_line(),
    };
    let update = options.is_full() && !args.no_update;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(iotcore_bench::run(options))?;
    let results = args.out.unwrap_or_else(|| root.join("bench/results"));
    let benchmarks = root.join("BENCHMARKS.md");
    let written = output::write(&report, &results, update.then_some(benchmarks.as_path()))?;
    println!("{}", iotcore_bench::markdown::render(&report, None));
    println!("results: {}", written.json.display());
    println!("table:   {}", written.markdown.display());
    if let Some(svg) = &written.svg {
        println!("plot:    {}", svg.display());
    }
    match &written.benchmarks {
        Some(file) => println!("updated: {}", file.display()),
        None => {
            println!("BENCHMARKS.md left alone (only a full run without --no-update changes it)")
        }
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} part(s) of the suite failed (see above)",
            report.failures.len()
        )
        .into())
    }
}

/// How this run was started, as a user would type it from the source tree.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -p iotcore-cli -- {}", args.join(" "))
}
