//! The demo against a running AWS IoT Core (or a separately started emulator):
//! the two things' files read from a directory, and the endpoint.
//!
//! The directory holds what `scripts/aws-provision --demo --out DIR` writes for
//! AWS IoT Core, and what `iotcore thing create demo-device --out DIR` plus
//! `iotcore thing create demo-cloud --template application --out DIR` write for
//! the emulator: `demo-device.cert.pem`, `demo-device.private.key`,
//! `demo-cloud.cert.pem`, `demo-cloud.private.key`, `root-ca.pem`, and (the
//! script only) `endpoint.txt`, the device data endpoint. Every file is loaded
//! before the demo starts, so a missing or wrong one fails first, named.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use iotcore::{Client, ClientBuilder, ConfigError, DEFAULT_PORT};
use iotcore_emulator::things::DeviceFiles;

/// The file in the certificates directory that names the endpoint.
pub const ENDPOINT_FILE: &str = "endpoint.txt";

/// Why the demo could not read its files or its endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoFilesError {
    /// The directory is not there.
    #[error(
        "{} is not a directory: `scripts/aws-provision --demo --out {}` makes it for AWS IoT Core",
        dir.display(),
        dir.display()
    )]
    NoDirectory {
        /// The directory given.
        dir: PathBuf,
    },
    /// A file the demo needs is not there.
    #[error("{} is missing: {writer}", path.display())]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// Which command writes it.
        writer: String,
    },
    /// A file exists but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A certificate, key or CA file is not usable.
    #[error("{thing}: {source}")]
    Invalid {
        /// The thing whose client would use it.
        thing: &'static str,
        /// What is wrong, naming the file.
        #[source]
        source: ConfigError,
    },
    /// The endpoint (given, or read from `endpoint.txt`) is not `HOST[:PORT]`.
    #[error("invalid endpoint {text:?} ({origin}): {reason}; expected HOST or HOST:PORT")]
    Endpoint {
        /// The text.
        text: String,
        /// Where it came from: `--endpoint` or the file.
        origin: String,
        /// What is wrong with it.
        reason: EndpointError,
    },
}

/// What is wrong with an endpoint's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Nothing but white space.
    #[error("it is empty")]
    Empty,
    /// The port is not a number from 1 to 65535.
    #[error("the port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// A `[` without its `]`, or text after the `]` that is not `:PORT`.
    #[error("a bracketed IPv6 address must be written [ADDRESS] or [ADDRESS]:PORT")]
    Brackets,
    /// A URL instead of a host.
    #[error("it is a URL; give the host alone (as `aws iot describe-endpoint` prints it)")]
    Url,
    /// A host with white space or a slash in it, or none.
    #[error("the host {0:?} is not a host name or an IP address")]
    Host(String),
}

/// Where the demo connects: a host name (what AWS's `describe-endpoint`
/// returns) or IP address, and a port (8883 unless given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host: a name (also the TLS server name) or an IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    /// Parses `HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EndpointError::Empty);
        }
        if text.contains("://") {
            return Err(EndpointError::Url);
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(EndpointError::Brackets)?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or(EndpointError::Brackets)?),
                ),
            }
        } else {
            match text.split_once(':') {
                // One colon: HOST:PORT. More: an IPv6 address without a port.
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                _ => (text, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(EndpointError::Host(host.to_owned()));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| EndpointError::Port(port.to_owned()))?,
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The demo's two clients, ready to connect, and where they connect.
#[derive(Debug)]
pub struct External {
    /// Where both connect.
    pub endpoint: Endpoint,
    /// The directory the files came from.
    pub certs: PathBuf,
    /// The device's client.
    pub device: ClientBuilder,
    /// The cloud side's client.
    pub cloud: ClientBuilder,
}

impl External {
    /// Reads `device`'s and `cloud`'s files from `certs`, and the endpoint
    /// from `endpoint` or else from `certs/endpoint.txt`.
    pub fn load(
        certs: &Path,
        endpoint: Option<&str>,
        device: &'static str,
        cloud: &'static str,
    ) -> Result<External, DemoFilesError> {
        if !certs.is_dir() {
            return Err(DemoFilesError::NoDirectory {
                dir: certs.to_path_buf(),
            });
        }
        let endpoint = match endpoint {
            Some(text) => parse_endpoint(text, "--endpoint".to_owned())?,
            None => {
                let path = certs.join(ENDPOINT_FILE);
                let writer = "`scripts/aws-provision` writes it (the device data endpoint); or \
                              give --endpoint HOST[:PORT]";
                let text = read(&path, writer)?;
                parse_endpoint(&text, path.display().to_string())?
            }
        };
        Ok(External {
            device: client_builder(certs, &endpoint, device, "")?,
            cloud: client_builder(certs, &endpoint, cloud, " --template application")?,
            certs: certs.to_path_buf(),
            endpoint,
        })
    }
}

/// A client for `thing` at `endpoint` with its files in `certs`; `template` is
/// the `iotcore thing create` option that made its policy, for error messages.
fn client_builder(
    certs: &Path,
    endpoint: &Endpoint,
    thing: &'static str,
    template: &str,
) -> Result<ClientBuilder, DemoFilesError> {
    let files = DeviceFiles::in_dir(certs, thing);
    let writer = format!(
        "`scripts/aws-provision --demo --out {dir}` writes it for AWS IoT Core, `iotcore thing \
         create {thing}{template} --out {dir}` for the emulator",
        dir = certs.display()
    );
    for path in [&files.certificate, &files.private_key, &files.root_ca] {
        require(path, &writer)?;
    }
    let invalid = |source| DemoFilesError::Invalid { thing, source };
    Client::builder(thing)
        .endpoint(endpoint.host.clone())
        .port(endpoint.port)
        .client_cert_pem_files(&files.certificate, &files.private_key)
        .map_err(invalid)?
        .root_ca_pem_file(&files.root_ca)
        .map_err(invalid)
}

fn parse_endpoint(text: &str, origin: String) -> Result<Endpoint, DemoFilesError> {
    text.parse().map_err(|reason| DemoFilesError::Endpoint {
        text: text.trim().to_owned(),
        origin,
        reason,
    })
}

fn require(path: &Path, writer: &str) -> Result<(), DemoFilesError> {
    match path.try_exists() {
        Ok(true) => Ok(()),
        Ok(false) => Err(DemoFilesError::Missing {
            path: path.to_path_buf(),
            writer: writer.to_owned(),
        }),
        Err(source) => Err(DemoFilesError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read(path: &Path, writer: &str) -> Result<String, DemoFilesError> {
    require(path, writer)?;
    std::fs::read_to_string(path).map_err(|source| DemoFilesError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str) -> Result<(String, u16), EndpointError> {
        text.parse::<Endpoint>().map(|e| (e.host, e.port))
    }

    #[test]
    fn an_endpoint_is_host_or_host_and_port_with_8883_by_default() {
        let ats = "a1b2c3-ats.iot.eu-west-1.amazonaws.com";
        assert_eq!(endpoint(ats), Ok((ats.to_owned(), 8883)));
        assert_eq!(endpoint(&format!("{ats}\n")), Ok((ats.to_owned(), 8883)));
        assert_eq!(endpoint("127.0.0.1:18883"), Ok(("127.0.0.1".into(), 18883)));
        assert_eq!(endpoint("localhost:443"), Ok(("localhost".into(), 443)));
        assert_eq!(endpoint("::1"), Ok(("::1".into(), 8883)));
        assert_eq!(endpoint("[::1]"), Ok(("::1".into(), 8883)));
        assert_eq!(endpoint("[::1]:1883"), Ok(("::1".into(), 1883)));
    }

    #[test]
    fn a_bad_endpoint_says_what_is_wrong() {
        assert_eq!(endpoint("  \n"), Err(EndpointError::Empty));
        assert_eq!(endpoint("host:0"), Err(EndpointError::Port("0".into())));
        assert_eq!(
            endpoint("host:88830"),
            Err(EndpointError::Port("88830".into()))
        );
        assert_eq!(endpoint("[::1"), Err(EndpointError::Brackets));
        assert_eq!(endpoint("[::1]8883"), Err(EndpointError::Brackets));
        assert_eq!(endpoint("https://host:8883"), Err(EndpointError::Url));
        assert_eq!(endpoint(":8883"), Err(EndpointError::Host(String::new())));
        assert_eq!(
            endpoint("two words"),
            Err(EndpointError::Host("two words".into()))
        );
    }

    #[test]
    fn endpoints_display_as_they_parse() {
        for text in ["localhost:8883", "[::1]:8883", "10.0.0.1:443"] {
            assert_eq!(text.parse::<Endpoint>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_missing_file_is_named_with_the_command_that_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = External::load(dir.path(), None, "demo-device", "demo-cloud").unwrap_err();
        let text = err.to_string();
        assert!(text.contains(ENDPOINT_FILE), "{text}");
        assert!(text.contains("scripts/aws-provision"), "{text}");

        let err =
            External::load(dir.path(), Some("localhost"), "demo-device", "demo-cloud").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("demo-device.cert.pem is missing"), "{text}");
        assert!(
            text.contains(&format!(
                "iotcore thing create demo-device --out {}",
                dir.path().display()
            )),
            "{text}"
        );
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err =
            External::load(&gone, Some("localhost"), "demo-device", "demo-cloud").unwrap_err();
        assert!(matches!(err, DemoFilesError::NoDirectory { .. }), "{err}");
    }

    #[test]
    fn an_unusable_endpoint_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ENDPOINT_FILE), "host:x\n").unwrap();
        let err = External::load(dir.path(), None, "demo-device", "demo-cloud").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("endpoint.txt"), "{text}");
        assert!(text.contains("\"x\""), "{text}");
    }
}
