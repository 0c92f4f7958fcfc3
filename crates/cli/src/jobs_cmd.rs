//! `iotcore jobs …`: AWS IoT Jobs in the emulator's registry, through its
//! control layer (CreateJob, ListJobs, DescribeJob, CancelJob, DeleteJob,
//! ListJobExecutionsForJob / ForThing), with AWS's validation and errors.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use iotcore_emulator::control::{
    CancelJobRequest, Control, CreateJobRequest, DeleteJobRequest, JobExecutionSummary,
    JobExecutionsRolloutConfig, JobIdRequest, TargetSelection, TimeoutConfig,
};
use serde::Serialize;
use serde_json::Value;

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::registry;

/// `iotcore jobs`: the subcommand, and whether to print AWS's JSON.
#[derive(Args)]
pub struct JobsArgs {
    /// Print the control plane's answer as AWS's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: JobsCommand,
}

/// Subcommands of `iotcore jobs`.
#[derive(Subcommand)]
enum JobsCommand {
    /// Create a job: a document for things and thing groups to run.
    Create {
        /// The job id (1-64 characters: letters, digits, '_', '-').
        id: String,
        /// Comma-separated targets: thing/NAME, group/NAME, or full ARNs.
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<String>,
        /// The job document, a JSON file (at most 32 KB).
        #[arg(long)]
        document: PathBuf,
        /// CONTINUOUS: things added to a target group later get the job too.
        #[arg(long)]
        continuous: bool,
        /// How long an execution may stay IN_PROGRESS before it is TIMED_OUT:
        /// minutes, or a number with m, h or d (30m, 2h, 7d; 1 minute to 7 days).
        #[arg(long, value_parser = parse_minutes)]
        timeout: Option<i64>,
        /// At most this many executions started per minute (1-1000).
        #[arg(long)]
        max_per_minute: Option<i64>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the jobs.
    List,
    /// Describe a job: its status, targets and how many executions are in each status.
    Describe {
        /// The job id.
        id: String,
    },
    /// Cancel a job: its QUEUED executions are CANCELED; with --force, its
    /// IN_PROGRESS ones too (the devices' next updates are refused).
    Cancel {
        /// The job id.
        id: String,
        /// Also cancel executions already IN_PROGRESS.
        #[arg(long)]
        force: bool,
        /// Why ([A-Z0-9_]+).
        #[arg(long)]
        reason_code: Option<String>,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Delete a job (with --force, one that is still IN_PROGRESS).
    Delete {
        /// The job id.
        id: String,
        /// Delete a job that is not COMPLETED or CANCELED.
        #[arg(long)]
        force: bool,
    },
    /// List job executions: of one thing, or of one job.
    Executions {
        /// The thing whose executions to list.
        #[arg(long, conflicts_with = "job", required_unless_present = "job")]
        thing: Option<String>,
        /// The job whose executions to list.
        #[arg(long)]
        job: Option<String>,
    },
}

/// Why a `--timeout` is not a duration in minutes.
#[derive(Debug, thiserror::Error)]
#[error("invalid timeout '{0}': give minutes, or a number with m, h or d (30m, 2h, 7d)")]
pub struct TimeoutError(String);

/// A duration as minutes: `90`, `30m`, `2h`, `7d`.
fn parse_minutes(given: &str) -> Result<i64, TimeoutError> {
    let error = || TimeoutError(given.to_owned());
    let (number, unit) = match given.char_indices().last() {
        Some((at, unit @ ('m' | 'h' | 'd'))) => (&given[..at], unit),
        _ => (given, 'm'),
    };
    let number: i64 = number.parse().map_err(|_| error())?;
    let factor = match unit {
        'h' => 60,
        'd' => 24 * 60,
        _ => 1,
    };
    number
        .checked_mul(factor)
        .filter(|m| *m > 0)
        .ok_or_else(error)
}

/// A target as an ARN: `thing/NAME` and `group/NAME` in the data directory's
/// region and account; an ARN as given.
fn target_arn(prefix: &str, target: &str) -> String {
    if let Some(thing) = target.strip_prefix("thing/") {
        format!("{prefix}thing/{thing}")
    } else if let Some(group) = target.strip_prefix("group/") {
        format!("{prefix}thinggroup/{group}")
    } else {
        target.to_owned()
    }
}

/// A value as AWS spells it on the wire (`IN_PROGRESS`, `SNAPSHOT`, …).
fn wire(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// An optional epoch-seconds time, or `-`.
fn time(at: Option<i64>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| at.to_string())
}

/// The last segment of an ARN (a thing's name).
fn arn_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Prints `value` as pretty JSON.
fn print_json(value: &impl Serialize) -> CliResult {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a `jobs` subcommand against the registry in `data_dir`.
pub fn run(data_dir: &DataDir, args: JobsArgs) -> CliResult {
    let control = data_dir.control()?;
    let json = args.json;
    match args.command {
        JobsCommand::Create {
            id,
            targets,
            document,
            continuous,
            timeout,
            max_per_minute,
            description,
        } => {
            let text = std::fs::read_to_string(&document)
                .map_err(|e| format!("cannot read the job document {}: {e}", document.display()))?;
            serde_json::from_str::<Value>(&text)
                .map_err(|e| format!("the job document {} is not JSON: {e}", document.display()))?;
            let prefix = control.arn_scope().prefix().to_owned();
            let targets = targets.iter().map(|t| target_arn(&prefix, t)).collect();
            let mut request = CreateJobRequest::new(&id, targets, &text);
            request.description = description;
            if continuous {
                request.target_selection = Some(TargetSelection::Continuous);
            }
            request.timeout_config = timeout.map(|minutes| TimeoutConfig {
                in_progress_timeout_in_minutes: Some(minutes),
            });
            request.job_executions_rollout_config =
                max_per_minute.map(|n| JobExecutionsRolloutConfig {
                    maximum_per_minute: Some(n),
                    ..JobExecutionsRolloutConfig::default()
                });
            let created = control.create_job(request)?;
            if json {
                return print_json(&created);
            }
            println!("job {} created ({})", created.job_id, created.job_arn);
            print_executions_of_job(&control, &created.job_id)
        }
        JobsCommand::List => {
            let jobs = registry::jobs(&control)?;
            if json {
                return print_json(&serde_json::json!({ "jobs": jobs }));
            }
            println!("JOB ID\tSTATUS\tTARGET SELECTION\tCREATED\tCOMPLETED");
            for job in jobs {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    job.job_id,
                    wire(&job.status),
                    wire(&job.target_selection),
                    job.created_at,
                    time(job.completed_at)
                );
            }
            Ok(())
        }
        JobsCommand::Describe { id } => {
            let described = control.describe_job(JobIdRequest {
                job_id: id,
                ..JobIdRequest::default()
            })?;
            if json {
                return print_json(&described);
            }
            let job = &described.job;
            println!("job id:            {}", job.job_id);
            println!("arn:               {}", job.job_arn);
            println!("status:            {}", wire(&job.status));
            println!("target selection:  {}", wire(&job.target_selection));
            println!("targets:           {}", job.targets.join(", "));
            if let Some(description) = &job.description {
                println!("description:       {description}");
            }
            if let Some(reason) = &job.reason_code {
                println!("reason code:       {reason}");
            }
            println!("created at:        {}", job.created_at);
            println!("completed at:      {}", time(job.completed_at));
            let counts = serde_json::to_value(&job.job_process_details)?;
            println!("executions:");
            if let Value::Object(counts) = counts {
                for (key, count) in counts {
                    let status = key
                        .trim_start_matches("numberOf")
                        .trim_end_matches("Things");
                    println!("  {status:<12} {count}");
                }
            }
            Ok(())
        }
        JobsCommand::Cancel {
            id,
            force,
            reason_code,
            comment,
        } => {
            let canceled = control.cancel_job(CancelJobRequest {
                job_id: id,
                reason_code,
                comment,
                force: Some(force),
            })?;
            if json {
                return print_json(&canceled);
            }
            println!(
                "job {} canceled: its QUEUED executions{} are CANCELED",
                canceled.job_id,
                if force { " and IN_PROGRESS ones" } else { "" }
            );
            Ok(())
        }
        JobsCommand::Delete { id, force } => {
            control.delete_job(DeleteJobRequest {
                job_id: id.clone(),
                force: Some(force),
                ..DeleteJobRequest::default()
            })?;
            if json {
                return print_json(&serde_json::json!({}));
            }
            println!("job {id} deleted");
            Ok(())
        }
        JobsCommand::Executions { thing, job } => match (thing, job) {
            (Some(thing), _) => {
                let executions = registry::thing_job_executions(&control, &thing)?;
                if json {
                    return print_json(&serde_json::json!({ "executionSummaries": executions }));
                }
                print_executions(
                    "JOB ID",
                    executions
                        .iter()
                        .map(|e| (e.job_id.as_str(), &e.job_execution_summary)),
                );
                Ok(())
            }
            (None, Some(job)) => {
                if json {
                    let executions = registry::job_executions(&control, &job)?;
                    return print_json(&serde_json::json!({ "executionSummaries": executions }));
                }
                print_executions_of_job(&control, &job)
            }
            (None, None) => Err("give --thing or --job".into()),
        },
    }
}

/// The table of a job's executions.
fn print_executions_of_job(control: &Control, job: &str) -> CliResult {
    let executions = registry::job_executions(control, job)?;
    print_executions(
        "THING",
        executions
            .iter()
            .map(|e| (arn_name(&e.thing_arn), &e.job_execution_summary)),
    );
    Ok(())
}

/// A table of executions, each named by its first column (`first`: the
/// column's title).
fn print_executions<'a>(
    first: &str,
    rows: impl Iterator<Item = (&'a str, &'a JobExecutionSummary)>,
) {
    println!("{first}\tSTATUS\tEXECUTION\tQUEUED\tSTARTED\tLAST UPDATED");
    for (name, s) in rows {
        println!(
            "{name}\t{}\t{}\t{}\t{}\t{}",
            wire(&s.status),
            s.execution_number,
            s.queued_at,
            time(s.started_at),
            s.last_updated_at
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_minutes() {
        assert_eq!(parse_minutes("90").unwrap(), 90);
        assert_eq!(parse_minutes("30m").unwrap(), 30);
        assert_eq!(parse_minutes("2h").unwrap(), 120);
        assert_eq!(parse_minutes("7d").unwrap(), 10_080);
        for bad in ["", "m", "0", "-5m", "1.5h", "3w", "99999999999999999999d"] {
            assert!(parse_minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_become_arns_in_the_scope() {
        let prefix = "arn:aws:iot:us-east-1:123456789012:";
        assert_eq!(
            target_arn(prefix, "thing/dev1"),
            "arn:aws:iot:us-east-1:123456789012:thing/dev1"
        );
        assert_eq!(
            target_arn(prefix, "group/lamps"),
            "arn:aws:iot:us-east-1:123456789012:thinggroup/lamps"
        );
        let arn = "arn:aws:iot:eu-west-1:1:thing/x";
        assert_eq!(target_arn(prefix, arn), arn);
    }
}
