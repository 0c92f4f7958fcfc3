//! Mosquitto as the broker under test.

use std::sync::Arc;

use iotcore_test_support::{FaultProxy, Mosquitto, TestPki, init_tracing};

use super::{BrokerUnderTest, Credentials};

/// A running Mosquitto with mutual TLS, and a second PKI it does not know.
pub struct MosquittoBroker {
    pub broker: Mosquitto,
    pub pki: Arc<TestPki>,
    pub stranger: Arc<TestPki>,
}

impl MosquittoBroker {
    pub fn start() -> MosquittoBroker {
        Self::start_with(&[])
    }

    /// Starts a broker with extra `mosquitto.conf` lines.
    pub fn start_with(config_lines: &[&str]) -> MosquittoBroker {
        init_tracing();
        let pki = Arc::new(TestPki::generate().expect("test PKI"));
        let stranger = Arc::new(TestPki::generate().expect("second test PKI"));
        let mut builder = Mosquitto::builder(&*pki);
        for line in config_lines {
            builder = builder.config_line(*line);
        }
        let broker = builder.start().expect("start mosquitto");
        MosquittoBroker {
            broker,
            pki,
            stranger,
        }
    }

    /// The broker under test, reached at `port` (the broker's, or a proxy's).
    pub fn under_test(&self, port: u16) -> BrokerUnderTest {
        let pki = self.pki.clone();
        let stranger = self.stranger.clone();
        BrokerUnderTest {
            port,
            ca: self.pki.ca_path().to_owned(),
            issue: Box::new(move |name| credentials(&pki, name)),
            issue_unknown: Box::new(move |name| credentials(&stranger, name)),
            wrong_ca: self.stranger.ca_path().to_owned(),
        }
    }
}

/// Mosquitto, reached directly (a scripted service) and through a
/// fault-injecting proxy (the device under test, whose link a test cuts).
pub struct ProxiedMosquitto {
    _broker: MosquittoBroker,
    pub direct: BrokerUnderTest,
    pub via: BrokerUnderTest,
    pub proxy: Arc<FaultProxy>,
}

impl ProxiedMosquitto {
    pub async fn start() -> ProxiedMosquitto {
        let broker = MosquittoBroker::start();
        let proxy = Arc::new(
            FaultProxy::start(broker.broker.addr())
                .await
                .expect("proxy"),
        );
        ProxiedMosquitto {
            direct: broker.under_test(broker.broker.port()),
            via: broker.under_test(proxy.port()),
            proxy,
            _broker: broker,
        }
    }
}

fn credentials(pki: &TestPki, name: &str) -> Credentials {
    let files = pki.issue_client(name).expect("issue client certificate");
    Credentials {
        cert: files.cert().to_owned(),
        key: files.key().to_owned(),
    }
}
