//! Shared by the provisioning tests: a template whose things may use their
//! own shadow only, claim devices, CSRs made on the "device", and a raw MQTT
//! client that publishes a provisioning request and returns its reply.
#![allow(dead_code)] // each test file uses a different part

use bytes::Bytes;
use iotcore_emulator::pki::DeviceCredentials;
use iotcore_emulator::provisioning::write_claim_files;
use iotcore_emulator::things::write_device_files;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use serde_json::Value;

use crate::support::{Device, RawClient, Setup, connect_packet, publish};

/// The test template's name.
pub const TEMPLATE: &str = "sensors";

/// A template: thing `sensor-<SerialNumber>` with attribute `serial`, the
/// certificate activated, and a policy (by document) that lets the thing
/// connect as itself and use its own classic and named shadows only.
pub const TEMPLATE_BODY: &str = r#"{
  "Parameters": {
    "SerialNumber": {"Type": "String"},
    "Site": {"Type": "String", "Default": "lab"}
  },
  "Resources": {
    "thing": {
      "Type": "AWS::IoT::Thing",
      "Properties": {
        "ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]},
        "AttributePayload": {"serial": {"Ref": "SerialNumber"}}
      }
    },
    "certificate": {
      "Type": "AWS::IoT::Certificate",
      "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}
    },
    "policy": {
      "Type": "AWS::IoT::Policy",
      "Properties": {
        "PolicyDocument": {
          "Version": "2012-10-17",
          "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": {"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:client/${!iot:Connection.Thing.ThingName}"}},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": {"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:topic/$aws/things/${!iot:Connection.Thing.ThingName}/shadow/*"}},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": {"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:topicfilter/$aws/things/${!iot:Connection.Thing.ThingName}/shadow/*"}}
          ]
        }
      }
    }
  },
  "DeviceConfiguration": {"site": {"Ref": "Site"}, "telemetry": "off"}
}"#;

/// Creates the test template (with `hook`, if given) in `setup`'s registry.
pub fn create_template(setup: &Setup, hook: Option<&str>) {
    setup
        .emulator
        .control()
        .create_template(TEMPLATE, TEMPLATE_BODY, None, hook)
        .expect("template created");
}

/// A claim certificate of the test template, as a device holds it.
pub fn claim_device(setup: &Setup, name: &str) -> Device {
    let emulator = &setup.emulator;
    let claim = emulator
        .control()
        .create_claim(TEMPLATE)
        .expect("claim created");
    let files = write_claim_files(&claim, emulator.ca_pem(), &setup.dir.path().join(name))
        .expect("claim files written");
    Device {
        name: name.to_owned(),
        credentials: claim.credentials,
        files,
        ca_pem: emulator.ca_pem().to_owned(),
    }
}

/// A provisioned device: its certificate and key, written under `devices/`.
pub fn device(setup: &Setup, name: &str, certificate_pem: &str, private_key_pem: &str) -> Device {
    let credentials = DeviceCredentials {
        certificate_pem: certificate_pem.to_owned(),
        private_key_pem: private_key_pem.to_owned(),
        certificate_id: String::new(),
    };
    let ca_pem = setup.emulator.ca_pem().to_owned();
    let files = write_device_files(
        name,
        &credentials,
        &ca_pem,
        &setup.dir.path().join("devices"),
    )
    .expect("device files written");
    Device {
        name: name.to_owned(),
        credentials,
        files,
        ca_pem,
    }
}

/// A new ECDSA P-256 key and a CSR for it, made the way a device makes them:
/// (private key PEM, CSR PEM).
pub fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sensor");
    let csr = params
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM");
    (key.serialize_pem(), csr)
}

/// The CreateCertificateFromCsr request for `csr`.
pub fn csr_request(csr: &str) -> Vec<u8> {
    serde_json::json!({"certificateSigningRequest": csr})
        .to_string()
        .into_bytes()
}

/// The RegisterThing topic of the test template.
pub fn register_topic() -> String {
    format!("$aws/provisioning-templates/{TEMPLATE}/provision/json")
}

/// A raw MQTT client that sends provisioning requests.
pub struct Provisioner {
    pub client: RawClient,
    next_id: u16,
}

impl Provisioner {
    /// Connects as `device` with `client_id`.
    pub async fn connect(
        setup: &Setup,
        device: &Device,
        client_id: &str,
        protocol: ProtocolVersion,
    ) -> Provisioner {
        let (client, connack) =
            RawClient::connect(setup.addr(), device, connect_packet(client_id, protocol)).await;
        assert_eq!(connack.reason, ReasonCode::SUCCESS, "{connack:?}");
        Provisioner { client, next_id: 1 }
    }

    fn packet_id(&mut self) -> u16 {
        self.next_id += 1;
        self.next_id
    }

    /// Subscribes to `request`'s accepted and rejected topics, as AWS asks.
    pub async fn subscribe_replies(&mut self, request: &str) {
        let id = self.packet_id();
        let accepted = format!("{request}/accepted");
        let rejected = format!("{request}/rejected");
        let reasons = self
            .client
            .subscribe(id, &[&accepted, &rejected], QoS::AtLeastOnce)
            .await;
        assert_eq!(reasons, [ReasonCode::GRANTED_QOS_1; 2], "{request}");
    }

    /// Publishes `payload` on `request` at QoS 1 and returns the reply: its
    /// topic suffix (`accepted` or `rejected`) and its JSON. The PUBACK and the
    /// reply may come in either order.
    pub async fn request(&mut self, request: &str, payload: impl Into<Bytes>) -> (String, Value) {
        let id = self.packet_id();
        self.client
            .send(&publish(request, QoS::AtLeastOnce, Some(id), payload))
            .await;
        let (mut acked, mut reply) = (false, None);
        while !acked || reply.is_none() {
            match self.client.recv_skipping_pings().await {
                Some(Packet::PubAck(ack)) if ack.packet_id == id => {
                    assert_eq!(ack.reason, ReasonCode::SUCCESS, "{request}");
                    acked = true;
                }
                Some(Packet::Publish(p)) => {
                    if let Some(packet_id) = p.packet_id {
                        self.client.send(&crate::support::puback(packet_id)).await;
                    }
                    let suffix = p
                        .topic
                        .strip_prefix(&format!("{request}/"))
                        .unwrap_or_else(|| panic!("reply on {} to {request}", p.topic))
                        .to_owned();
                    let body: Value = serde_json::from_slice(&p.payload).expect("JSON reply");
                    reply = Some((suffix, body));
                }
                other => panic!("expected PUBACK {id} or a reply, got {other:?}"),
            }
        }
        reply.unwrap_or_default()
    }

    /// Publishes at QoS 1 and returns the PUBACK reason (MQTT 5), for requests
    /// the policy refuses.
    pub async fn publish_expecting_puback(&mut self, topic: &str) -> ReasonCode {
        let id = self.packet_id();
        self.client.publish_qos1(id, topic, "{}").await
    }
}
