//! `iotcore authorizer …`: custom authorizers whose "Lambda function" is a
//! local command (it reads AWS's Lambda input event as JSON on stdin and
//! prints AWS's response on stdout).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use iotcore_emulator::control::{
    AuthorizerNameRequest, CreateAuthorizerRequest, ListAuthorizersRequest,
    TestInvokeAuthorizerRequest, TestMqttContext,
};

use crate::CliResult;
use crate::data_dir::DataDir;

/// Subcommands of `iotcore authorizer`.
#[derive(Subcommand)]
pub enum AuthorizerCommand {
    /// Create a custom authorizer (CreateAuthorizer). Without --public-key,
    /// signing is disabled: the command alone decides.
    Create {
        /// The authorizer's name.
        name: String,
        /// The command run as the authorizer's function (by `sh -c`): AWS's
        /// Lambda input event arrives as JSON on its stdin, AWS's response is
        /// read from its stdout, within 5 seconds.
        #[arg(long)]
        command: String,
        /// The name of the token's parameter (username query, header or query).
        #[arg(long)]
        token_key_name: Option<String>,
        /// A PEM file with the RSA public key (2048 bits or more) that
        /// verifies tokens' signatures (x-amz-customauthorizer-signature);
        /// needs --token-key-name.
        #[arg(long, value_name = "PEM_FILE", requires = "token_key_name")]
        public_key: Option<PathBuf>,
        /// Also make it the default authorizer (SetDefaultAuthorizer).
        #[arg(long)]
        default: bool,
    },
    /// Run an authorizer as a connection would (TestInvokeAuthorizer) and
    /// print its answer.
    Test {
        /// The authorizer's name.
        name: String,
        /// The token.
        #[arg(long)]
        token: Option<String>,
        /// The token's signature (base64).
        #[arg(long)]
        signature: Option<String>,
        /// The MQTT username.
        #[arg(long)]
        username: Option<String>,
        /// The MQTT password.
        #[arg(long)]
        password: Option<String>,
        /// The MQTT client id.
        #[arg(long)]
        client_id: Option<String>,
    },
    /// List the authorizers.
    List,
    /// Delete an authorizer.
    Delete {
        /// The authorizer's name.
        name: String,
    },
}

/// Runs an `authorizer` subcommand against the registry in `data_dir`.
pub fn run(data_dir: &DataDir, command: AuthorizerCommand) -> CliResult {
    let control = data_dir.control()?;
    match command {
        AuthorizerCommand::Create {
            name,
            command,
            token_key_name,
            public_key,
            default,
        } => {
            let keys = match &public_key {
                Some(path) => {
                    let pem = fs::read_to_string(path).map_err(|e| {
                        format!("cannot read the public key {}: {e}", path.display())
                    })?;
                    Some(BTreeMap::from([("key1".to_owned(), pem)]))
                }
                None => None,
            };
            let created = control.create_authorizer(CreateAuthorizerRequest {
                authorizer_name: name.clone(),
                authorizer_function_arn: command,
                token_key_name,
                signing_disabled: Some(public_key.is_none()),
                token_signing_public_keys: keys,
                ..CreateAuthorizerRequest::default()
            })?;
            println!("authorizer {} created ({})", name, created.authorizer_arn);
            if default {
                control.set_default_authorizer(AuthorizerNameRequest {
                    authorizer_name: name.clone(),
                })?;
                println!("authorizer {name} is the default authorizer");
            }
        }
        AuthorizerCommand::Test {
            name,
            token,
            signature,
            username,
            password,
            client_id,
        } => {
            let mqtt =
                (username.is_some() || password.is_some() || client_id.is_some()).then(|| {
                    TestMqttContext {
                        username,
                        password: password.map(|p| BASE64.encode(p)),
                        client_id,
                    }
                });
            let request = TestInvokeAuthorizerRequest {
                authorizer_name: name,
                token,
                token_signature: signature,
                mqtt_context: mqtt,
                ..TestInvokeAuthorizerRequest::default()
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let answer = runtime.block_on(control.test_invoke_authorizer(request))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        AuthorizerCommand::List => {
            let default = control
                .describe_default_authorizer(Default::default())
                .ok()
                .map(|d| d.authorizer_description.authorizer_name);
            println!("NAME\tSTATUS\tSIGNING\tCOMMAND");
            for summary in control
                .list_authorizers(ListAuthorizersRequest::default())?
                .authorizers
            {
                let d = control
                    .describe_authorizer(AuthorizerNameRequest {
                        authorizer_name: summary.authorizer_name.clone(),
                    })?
                    .authorizer_description;
                let marker = if default.as_deref() == Some(d.authorizer_name.as_str()) {
                    " (default)"
                } else {
                    ""
                };
                let signing = if d.signing_disabled { "off" } else { "on" };
                println!(
                    "{}{marker}\t{}\t{signing}\t{}",
                    d.authorizer_name, d.status, d.authorizer_function_arn
                );
            }
        }
        AuthorizerCommand::Delete { name } => {
            control.delete_authorizer(AuthorizerNameRequest {
                authorizer_name: name.clone(),
            })?;
            println!("authorizer {name} deleted");
        }
    }
    Ok(())
}
