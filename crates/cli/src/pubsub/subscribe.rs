//! `iotcore sub`: subscribe to topic filters and print what arrives, like
//! mosquitto_sub (`-v`, `-C`, `-W`, `-N`), with JSON pretty-printed.
//!
//! A payload that is a JSON object or array is printed pretty (keys in the
//! order they came); other UTF-8 text as it came; anything else as base64
//! after a note saying so. `--raw` prints every payload's bytes unchanged.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use clap::Args;
use iotcore::QoS;
use tokio_stream::StreamExt;

use super::{Guard, Request, parse_qos};
use crate::CliResult;
use crate::cli_identity::Connection;
use crate::data_dir::DataDir;

/// The exit status after `-W` expired: mosquitto_sub's (`MOSQ_ERR_TIMEOUT`).
pub const TIMED_OUT_STATUS: u8 = 27;

/// `iotcore sub`'s options.
#[derive(Args)]
pub struct SubArgs {
    /// A topic filter to subscribe to (repeat for more; `+` and `#` wildcards).
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    filters: Vec<String>,
    /// QoS of the subscriptions: 0 or 1 (AWS IoT Core has no QoS 2).
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Print each message's topic before its payload.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Exit after receiving this many messages.
    #[arg(short = 'C', value_name = "COUNT")]
    count: Option<u64>,
    /// Exit after this many seconds from connecting, with status 27 (as
    /// mosquitto_sub) unless -C's count was reached first.
    #[arg(short = 'W', value_name = "SECONDS")]
    wait: Option<u64>,
    /// Do not end each payload with a newline.
    #[arg(short = 'N')]
    no_newline: bool,
    /// Print payloads as they came: no JSON pretty-printing, binary as is.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `-W` expired.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {seconds} s (-W) with {received} message(s) received")]
pub struct TimedOut {
    seconds: u64,
    received: u64,
}

/// Runs `iotcore sub`; the default identity lives in `data_dir`.
pub fn run(data_dir: &DataDir, args: SubArgs) -> CliResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = args
            .connection
            .connect(data_dir, None, |builder| builder)
            .await?;
        let result = receive(&client, &args).await;
        client.close().await;
        result
    })
}

/// Subscribes and prints until the count, the time limit, Ctrl-C or a closed stdout.
async fn receive(client: &iotcore::Client, args: &SubArgs) -> CliResult {
    let deadline = args
        .wait
        .map(|seconds| tokio::time::Instant::now() + Duration::from_secs(seconds));
    // Every message once, whichever of the filters it matched.
    let mut messages = client.messages();
    let mut guard = Guard::new(client, args.connection.timeout());
    for filter in &args.filters {
        // Dropping the stream keeps the subscription; `messages` gets them all.
        guard
            .run(
                Request::Subscribe,
                filter,
                client.subscribe(filter.as_str(), args.qos),
            )
            .await?;
        tracing::info!(filter, qos = ?args.qos, "subscribed");
    }
    let format = Format {
        verbose: args.verbose,
        raw: args.raw,
        newline: !args.no_newline,
    };
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let timer = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now));
    tokio::pin!(timer);
    let mut received = 0u64;
    while args.count.is_none_or(|count| received < count) {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { break };
                received += 1;
                let mut stdout = std::io::stdout().lock();
                // A closed stdout (`… | head -1`) ends the command.
                if stdout.write_all(&format.render(message.topic(), message.payload())).and_then(|()| stdout.flush()).is_err() {
                    break;
                }
            }
            () = &mut timer, if deadline.is_some() => {
                return Err(TimedOut { seconds: args.wait.unwrap_or_default(), received }.into());
            }
            _ = &mut stop => break,
        }
    }
    if messages.dropped_messages() > 0 {
        eprintln!(
            "warning: {} message(s) arrived faster than they could be printed and were dropped",
            messages.dropped_messages()
        );
    }
    Ok(())
}

/// How a message is printed.
struct Format {
    /// The topic and a space first.
    verbose: bool,
    /// The payload's bytes unchanged.
    raw: bool,
    /// A newline after the payload.
    newline: bool,
}

impl Format {
    /// The bytes printed for a message of `payload` on `topic`.
    fn render(&self, topic: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.verbose {
            out.extend_from_slice(topic.as_bytes());
            out.push(b' ');
        }
        if self.raw {
            out.extend_from_slice(payload);
        } else if let Some(pretty) = pretty_json(payload) {
            out.extend_from_slice(&pretty);
        } else if std::str::from_utf8(payload).is_ok() {
            out.extend_from_slice(payload);
        } else {
            let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
            let note = format!("(not UTF-8: {} bytes, base64) {encoded}", payload.len());
            out.extend_from_slice(note.as_bytes());
        }
        if self.newline {
            out.push(b'\n');
        }
        out
    }
}

/// A JSON object or array, pretty-printed with its keys in their order.
fn pretty_json(payload: &[u8]) -> Option<Vec<u8>> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(first, b'{' | b'[') {
        return None;
    }
    let mut input = serde_json::Deserializer::from_slice(payload);
    let mut out = Vec::new();
    let mut output = serde_json::Serializer::pretty(&mut out);
    serde_transcode::transcode(&mut input, &mut output).ok()?;
    input.end().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &Format, payload: &[u8]) -> String {
        String::from_utf8(format.render("dt/a", payload)).unwrap()
    }

    const PLAIN: Format = Format {
        verbose: false,
        raw: false,
        newline: true,
    };

    #[test]
    fn json_objects_are_pretty_printed_in_their_key_order() {
        assert_eq!(
            render(&PLAIN, br#"{"z":1,"a":[true,null]}"#),
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}\n"
        );
        let verbose = Format {
            verbose: true,
            ..PLAIN
        };
        assert_eq!(render(&verbose, b"[]"), "dt/a []\n");
    }

    #[test]
    fn text_that_is_not_a_json_document_is_printed_as_it_came() {
        assert_eq!(render(&PLAIN, b"1e3"), "1e3\n");
        assert_eq!(render(&PLAIN, b"{not json"), "{not json\n");
        assert_eq!(
            render(&PLAIN, br#"{"a":1} trailing"#),
            "{\"a\":1} trailing\n"
        );
        let bare = Format {
            newline: false,
            ..PLAIN
        };
        assert_eq!(render(&bare, b"21.5"), "21.5");
    }

    #[test]
    fn binary_payloads_are_printed_as_base64_unless_raw() {
        assert_eq!(
            render(&PLAIN, &[0xff, 0x00, 0x01]),
            "(not UTF-8: 3 bytes, base64) /wAB\n"
        );
        let raw = Format { raw: true, ..PLAIN };
        assert_eq!(raw.render("t", &[0xff, 0x00]), vec![0xff, 0x00, b'\n']);
        assert_eq!(raw.render("t", br#"{"a":1}"#), b"{\"a\":1}\n".to_vec());
    }
}
