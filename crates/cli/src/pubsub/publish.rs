//! `iotcore pub`: publish one message (`-m`, `-f`, `-s`, `-n`) or one per
//! line of stdin (`-l`), like mosquitto_pub.
//!
//! At QoS 1 each message waits for its PUBACK, so a refusal is always
//! reported. At QoS 0 nothing is acknowledged: on MQTT 3.1.1 a refusal (the
//! server closing the connection) is reported only when it arrives before the
//! command ends, as with mosquitto_pub.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use iotcore::{Client, QoS};
use tokio::io::AsyncBufReadExt;

use super::{Guard, Request, parse_qos};
use crate::CliResult;
use crate::cli_identity::Connection;
use crate::data_dir::DataDir;

/// `iotcore pub`'s options.
#[derive(Args)]
#[command(group(ArgGroup::new("payload").required(true).multiple(false)))]
pub struct PubArgs {
    /// The topic to publish to.
    #[arg(short = 't', long)]
    topic: String,
    /// Send this message.
    #[arg(short = 'm', long, group = "payload")]
    message: Option<String>,
    /// Send the contents of this file as the message.
    #[arg(short = 'f', long, group = "payload", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Send each line read from stdin as a message of its own.
    #[arg(short = 'l', long, group = "payload")]
    stdin_line: bool,
    /// Send the whole of stdin as one message.
    #[arg(short = 's', long, group = "payload")]
    stdin_file: bool,
    /// Send an empty message (with -r: clears the topic's retained message).
    #[arg(short = 'n', long, group = "payload")]
    null_message: bool,
    /// QoS: 0 or 1 (AWS IoT Core has no QoS 2).
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Retain the message: the broker hands it to later subscribers (the
    /// policy must also allow iot:RetainPublish).
    #[arg(short = 'r', long)]
    retain: bool,
    #[command(flatten)]
    connection: Connection,
}

/// Why the message to send could not be read.
#[derive(Debug, thiserror::Error)]
enum PayloadError {
    #[error("cannot read the message file {}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the message from stdin")]
    Stdin(#[source] std::io::Error),
}

/// Runs `iotcore pub`; the default identity lives in `data_dir`.
pub fn run(data_dir: &DataDir, args: PubArgs) -> CliResult {
    // Read a single message before connecting: bad input fails without a connection.
    let single = match (&args.message, &args.file) {
        (Some(message), _) => Some(message.clone().into_bytes()),
        (None, Some(path)) => Some(read_file(path)?),
        _ if args.stdin_file => Some(read_stdin()?),
        _ if args.null_message => Some(Vec::new()),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = args
            .connection
            .connect(data_dir, None, |builder| builder)
            .await?;
        let mut publisher = Publisher {
            guard: Guard::new(&client, args.connection.timeout()),
            client: &client,
            args: &args,
        };
        let result = match single {
            Some(payload) => publisher.send(payload).await,
            None => publisher.send_lines().await,
        };
        client.close().await;
        result
    })
}

/// Sends messages to `args.topic`.
struct Publisher<'a> {
    guard: Guard,
    client: &'a Client,
    args: &'a PubArgs,
}

impl Publisher<'_> {
    async fn send(&mut self, payload: Vec<u8>) -> CliResult {
        let PubArgs {
            topic, qos, retain, ..
        } = self.args;
        let client = self.client;
        let pending = async move {
            if *retain {
                client.publish_retained(topic.as_str(), payload, *qos).await
            } else {
                client.publish(topic.as_str(), payload, *qos).await
            }
        };
        let request = Request::Publish { retain: *retain };
        self.guard.run(request, topic, pending).await?;
        Ok(())
    }

    /// One message per line of stdin (without its `\n`), until its end.
    async fn send_lines(&mut self) -> CliResult {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).split(b'\n');
        while let Some(line) = lines.next_segment().await.map_err(PayloadError::Stdin)? {
            self.send(line).await?;
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, PayloadError> {
    std::fs::read(path).map_err(|source| PayloadError::File {
        path: path.to_owned(),
        source,
    })
}

fn read_stdin() -> Result<Vec<u8>, PayloadError> {
    let mut payload = Vec::new();
    std::io::stdin()
        .read_to_end(&mut payload)
        .map_err(PayloadError::Stdin)?;
    Ok(payload)
}
