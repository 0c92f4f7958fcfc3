//! `iotcore emulator`: run the local AWS IoT Core until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use iotcore_emulator::{Emulator, EmulatorConfig};

use crate::CliResult;

/// Options of `iotcore emulator`.
#[derive(Args)]
pub struct EmulatorArgs {
    /// TCP port of the MQTT over TLS listener (0 picks a free one).
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Extra host names or IP addresses the server certificate must cover
    /// (besides localhost, 127.0.0.1 and ::1). Repeat or separate with commas.
    #[arg(long = "server-name", value_delimiter = ',')]
    server_names: Vec<String>,
    /// How long a persistent session outlives its connection, in seconds (AWS: 3600).
    #[arg(long, default_value_t = 3600)]
    persistent_session_expiry: u64,
}

/// Starts the emulator with state in `data_dir` and serves until Ctrl-C.
pub fn run(data_dir: &Path, args: EmulatorArgs) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = EmulatorConfig::new(data_dir)
            .with_bind(SocketAddr::new(args.bind, args.port))
            .with_extra_server_names(args.server_names)
            .with_persistent_session_expiry(Duration::from_secs(args.persistent_session_expiry));
        let emulator = Emulator::start(config).await?;
        println!("iotcore emulator listening on {}", emulator.local_addr());
        println!("data directory: {}", data_dir.display());
        println!("root CA: {}", data_dir.join("pki/ca.pem").display());
        println!("press Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
        println!("stopping");
        emulator.shutdown().await;
        Ok(())
    })
}
