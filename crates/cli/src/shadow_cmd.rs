//! `iotcore shadow get|update|delete|watch`: a thing's Device Shadow, from the
//! application's side, over MQTT to a running emulator (or AWS IoT Core).
//!
//! Where and as whom it connects: [`crate::cli_identity`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use iotcore::Client;
use iotcore::shadow::{ShadowClient, UpdateRequest};
use serde_json::{Map, Value};
use tokio_stream::StreamExt;

use crate::CliResult;
use crate::cli_identity::Connection;
use crate::data_dir::DataDir;

/// Subcommands of `iotcore shadow`.
#[derive(Subcommand)]
pub enum ShadowCommand {
    /// Print a shadow's document (state, metadata, version) as JSON.
    Get(Target),
    /// Change a shadow's desired and/or reported state; print the accepted reply.
    Update {
        #[command(flatten)]
        target: Target,
        /// Merge this JSON object into the desired state (`null` values delete
        /// keys; `null` alone removes the section).
        #[arg(long, value_name = "JSON")]
        desired: Option<String>,
        /// Merge this JSON object into the reported state.
        #[arg(long, value_name = "JSON")]
        reported: Option<String>,
        /// Read the state from a file (- for stdin): `{"desired":…,"reported":…}`,
        /// or a whole update request `{"state":{…}}`.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["desired", "reported"])]
        state_file: Option<PathBuf>,
        /// Apply only if the shadow is at this version (else 409 Version conflict).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Delete a shadow.
    Delete(Target),
    /// Print the shadow's delta and documents events as JSON lines until Ctrl-C.
    Watch(Target),
}

/// Which shadow, and how to reach the service.
#[derive(Args)]
pub struct Target {
    /// The thing whose shadow it is.
    #[arg(long)]
    thing: String,
    /// A named shadow; without it, the thing's classic shadow.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

/// Runs a `shadow` subcommand; the default identity lives in `data_dir`.
pub fn run(data_dir: &DataDir, command: ShadowCommand) -> CliResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            ShadowCommand::Get(target) => {
                let (client, shadow) = connect(data_dir, &target).await?;
                let result = shadow.get().await;
                client.close().await;
                let mut document = result?;
                document.client_token = None;
                print_json(serde_json::to_value(document)?)
            }
            ShadowCommand::Update {
                target,
                desired,
                reported,
                state_file,
                version,
            } => {
                let request = update_request(
                    desired.as_deref(),
                    reported.as_deref(),
                    state_file.as_deref(),
                    version,
                )?;
                let (client, shadow) = connect(data_dir, &target).await?;
                let result = shadow.update(request).await;
                client.close().await;
                let mut accepted = result?;
                accepted.client_token = None;
                print_json(serde_json::to_value(accepted)?)
            }
            ShadowCommand::Delete(target) => {
                let (client, shadow) = connect(data_dir, &target).await?;
                let result = shadow.delete().await;
                client.close().await;
                let mut accepted = result?;
                accepted.client_token = None;
                print_json(serde_json::to_value(accepted)?)
            }
            ShadowCommand::Watch(target) => watch(data_dir, &target).await,
        }
    })
}

/// Prints every delta and documents event until Ctrl-C or the connection closes.
async fn watch(data_dir: &DataDir, target: &Target) -> CliResult {
    let (client, shadow) = connect(data_dir, target).await?;
    let mut deltas = shadow.deltas().await?;
    let mut documents = shadow.documents().await?;
    eprintln!("watching {} (Ctrl-C to stop)", shadow.id());
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let line = tokio::select! {
            delta = deltas.next() => match delta {
                Some(delta) => event_line("delta", serde_json::to_value(delta)?)?,
                None => break,
            },
            event = documents.next() => match event {
                Some(event) => event_line("documents", serde_json::to_value(event)?)?,
                None => break,
            },
            _ = &mut stop => break,
        };
        // A closed stdout (`… watch | head -1`) ends the watch.
        if writeln!(std::io::stdout(), "{line}").is_err() {
            break;
        }
    }
    client.close().await;
    Ok(())
}

/// `{"event": kind, …the event's fields}` on one line.
fn event_line(kind: &str, event: Value) -> Result<String, serde_json::Error> {
    let mut line = Map::new();
    line.insert("event".into(), kind.into());
    if let Value::Object(fields) = event {
        line.extend(fields);
    }
    serde_json::to_string(&line)
}

fn print_json(value: Value) -> CliResult {
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&value)?
    )?;
    Ok(())
}

/// Why the command line's update is not one.
#[derive(Debug, thiserror::Error)]
enum UpdateInputError {
    #[error("nothing to update: give --desired, --reported or --state-file")]
    Nothing,
    #[error("--{option} is not valid JSON: {source}")]
    NotJson {
        option: &'static str,
        source: serde_json::Error,
    },
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the update is not one AWS IoT accepts: {message} (code {code})")]
    Invalid { code: u16, message: String },
}

/// The update request the options describe, checked as the service checks it.
fn update_request(
    desired: Option<&str>,
    reported: Option<&str>,
    state_file: Option<&Path>,
    version: Option<u64>,
) -> Result<UpdateRequest, UpdateInputError> {
    let json = |option: &'static str, text: &str| {
        serde_json::from_str::<Value>(text)
            .map_err(|source| UpdateInputError::NotJson { option, source })
    };
    let state = match state_file {
        Some(path) => {
            let text = read_state_file(path)?;
            match json("state-file", &text)? {
                Value::Object(mut request) if request.contains_key("state") => {
                    request.remove("state").unwrap_or(Value::Null)
                }
                state => state,
            }
        }
        None => {
            let mut state = Map::new();
            if let Some(desired) = desired {
                state.insert("desired".into(), json("desired", desired)?);
            }
            if let Some(reported) = reported {
                state.insert("reported".into(), json("reported", reported)?);
            }
            if state.is_empty() {
                return Err(UpdateInputError::Nothing);
            }
            Value::Object(state)
        }
    };
    let mut request = Map::new();
    request.insert("state".into(), state);
    if let Some(version) = version {
        request.insert("version".into(), version.into());
    }
    let payload = serde_json::to_vec(&request).unwrap_or_default();
    UpdateRequest::parse(&payload).map_err(|e| UpdateInputError::Invalid {
        code: e.code(),
        message: e.to_string(),
    })
}

fn read_state_file(path: &Path) -> Result<String, UpdateInputError> {
    let read = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|source| UpdateInputError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Connects and returns the client and the target's shadow handle.
async fn connect(data_dir: &DataDir, target: &Target) -> CliResult<(Client, ShadowClient)> {
    let options = &target.connection;
    let client = options
        .connect(data_dir, Some(target.thing.as_str()), |builder| builder)
        .await?;
    let shadow = client
        .thing_shadow(target.thing.as_str(), target.name.as_deref())
        .with_timeout(options.timeout());
    Ok((client, shadow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotcore::shadow::StatePatch;
    use serde_json::json;

    #[test]
    fn options_make_a_checked_update_request() {
        let request = update_request(Some(r#"{"led":"on"}"#), Some("null"), None, Some(3)).unwrap();
        assert_eq!(
            request.state.desired,
            StatePatch::Merge(json!({"led": "on"}).as_object().unwrap().clone())
        );
        assert_eq!(request.state.reported, StatePatch::Clear);
        assert_eq!(request.version, Some(3));
        assert!(matches!(
            update_request(None, None, None, None),
            Err(UpdateInputError::Nothing)
        ));
        let e = update_request(Some("{led"), None, None, None).unwrap_err();
        assert!(
            e.to_string().starts_with("--desired is not valid JSON"),
            "{e}"
        );
        let e = update_request(Some("[1]"), None, None, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("Desired node must be an object (code 400)"),
            "{e}"
        );
    }

    #[test]
    fn a_state_file_holds_the_state_or_a_whole_request() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        std::fs::write(&state, r#"{"reported":{"fw":"1.2"}}"#).unwrap();
        let request = update_request(None, None, Some(&state), None).unwrap();
        assert!(matches!(request.state.reported, StatePatch::Merge(_)));
        std::fs::write(&state, r#"{"state":{"desired":{"fw":"1.3"}},"version":9}"#).unwrap();
        let request = update_request(None, None, Some(&state), Some(4)).unwrap();
        assert!(matches!(request.state.desired, StatePatch::Merge(_)));
        assert_eq!(
            request.version,
            Some(4),
            "the command line's version counts"
        );
        let e = update_request(None, None, Some(&dir.path().join("none.json")), None).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read the state file"),
            "{e}"
        );
    }

    #[test]
    fn event_lines_name_their_event() {
        let line = event_line("delta", json!({"state": {"a": 1}, "version": 2})).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"event": "delta", "state": {"a": 1}, "version": 2})
        );
    }
}
