//! What the long-running commands (`iotcore emulator`, `iotcore greengrass
//! core run`) share: the signals that stop them or ask for something, and
//! their lines on stdout.

/// Registers for Ctrl-C (and SIGTERM on Unix) now, and returns a future that
/// resolves when either arrives.
pub fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// SIGHUP, registered now: a request to the running command (on other
/// systems than Unix, never).
pub struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangups {
    /// Resolves at the next SIGHUP.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

/// Registers for SIGHUP now.
pub fn hangups() -> std::io::Result<Hangups> {
    Ok(Hangups {
        #[cfg(unix)]
        signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
    })
}

/// Prints a line to stdout. A closed stdout (`iotcore emulator | head -1`) is not
/// an error: the command keeps serving and its log still goes to stderr.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
