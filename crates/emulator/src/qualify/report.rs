//! A qualification run's report: a human summary, JSON, and JUnit XML for CI
//! systems.

use std::fmt::Write as _;

use serde::Serialize;

use super::grade::Verdict;
use super::server::CaseResult;

/// The results of one run, for one device.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was qualified (the `--run` command, or a name).
    pub device: String,
    /// Each case run, in order.
    pub cases: Vec<CaseReport>,
}

/// One case in a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Device Advisor's id.
    pub id: String,
    /// `PASS`, `PASS_WITH_WARNINGS`, `FAIL` or `SKIPPED`.
    pub verdict: &'static str,
    /// What the verdict rests on.
    pub evidence: Vec<String>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u128,
    /// Connections the device opened during it.
    pub connections: u32,
}

impl From<&CaseResult> for CaseReport {
    fn from(result: &CaseResult) -> Self {
        CaseReport {
            id: result.case.as_str().to_owned(),
            verdict: result.outcome.verdict.as_str(),
            evidence: result.outcome.evidence.clone(),
            duration_ms: result.duration.as_millis(),
            connections: result.connections,
        }
    }
}

impl Report {
    /// A report of `results` for `device`.
    pub fn new(device: impl Into<String>, results: &[CaseResult]) -> Report {
        Report {
            device: device.into(),
            cases: results.iter().map(CaseReport::from).collect(),
        }
    }

    /// How many cases got `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.cases
            .iter()
            .filter(|c| c.verdict == verdict.as_str())
            .count()
    }

    /// True when no case failed.
    pub fn passed(&self) -> bool {
        self.count(Verdict::Fail) == 0
    }

    /// The summary a person reads: one line per case, its evidence under it.
    pub fn human(&self) -> String {
        let mut out = format!("qualification of {}\n", self.device);
        for case in &self.cases {
            let _ = writeln!(out, "{:<20} {}", case.verdict, case.id);
            for line in &case.evidence {
                let _ = writeln!(out, "{:<20}   {line}", "");
            }
        }
        let _ = write!(
            out,
            "{} passed, {} passed with warnings, {} failed",
            self.count(Verdict::Pass),
            self.count(Verdict::PassWithWarnings),
            self.count(Verdict::Fail)
        );
        let skipped = self.count(Verdict::Skipped);
        if skipped > 0 {
            let _ = write!(out, ", {skipped} skipped");
        }
        out
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as JUnit XML: one test case per Device Advisor case, a
    /// failure for each FAIL, the evidence as its output.
    pub fn junit(&self) -> String {
        let seconds = |ms: u128| format!("{:.3}", ms as f64 / 1000.0);
        let total: u128 = self.cases.iter().map(|c| c.duration_ms).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuite name=\"iotcore qualify\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" \
             time=\"{}\">",
            self.cases.len(),
            self.count(Verdict::Fail),
            self.count(Verdict::Skipped),
            seconds(total)
        );
        let _ = writeln!(
            out,
            "  <properties><property name=\"device\" value=\"{}\"/></properties>",
            escape(&self.device)
        );
        for case in &self.cases {
            let evidence = escape(&case.evidence.join("\n"));
            let _ = write!(
                out,
                "  <testcase classname=\"DeviceAdvisor\" name=\"{}\" time=\"{}\">",
                escape(&case.id),
                seconds(case.duration_ms)
            );
            if case.verdict == Verdict::Fail.as_str() {
                let _ = write!(out, "<failure message=\"{evidence}\"/>");
            } else if case.verdict == Verdict::Skipped.as_str() {
                let _ = write!(out, "<skipped message=\"{evidence}\"/>");
            }
            let _ = writeln!(
                out,
                "<system-out>{}: {evidence}</system-out></testcase>",
                case.verdict
            );
        }
        out.push_str("</testsuite>\n");
        out
    }
}

/// Text as XML character data or an attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::qualify::{CaseId, Outcome};

    #[test]
    fn the_report_says_each_verdict_in_every_format() {
        let result = |case, verdict, evidence: &str| CaseResult {
            case,
            outcome: Outcome {
                verdict,
                evidence: vec![evidence.into()],
            },
            duration: Duration::from_millis(1500),
            connections: 1,
        };
        let report = Report::new(
            "device <1> & co",
            &[
                result(CaseId::MqttConnect, Verdict::Pass, "CONNECT"),
                result(
                    CaseId::MqttPublishRetryNoPuback,
                    Verdict::Fail,
                    "no \"retry\"",
                ),
                result(
                    CaseId::SecurityDevicePolicies,
                    Verdict::Skipped,
                    "no policy given",
                ),
            ],
        );
        assert!(!report.passed());
        let human = report.human();
        assert!(
            human.contains("FAIL                 MQTT_Publish_Retry_No_Puback"),
            "{human}"
        );
        assert!(
            human.ends_with("1 passed, 0 passed with warnings, 1 failed, 1 skipped"),
            "{human}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["cases"][1]["verdict"], "FAIL");
        let junit = report.junit();
        assert!(
            junit.contains("tests=\"3\" failures=\"1\" skipped=\"1\" time=\"4.500\""),
            "{junit}"
        );
        assert!(
            junit.contains("<failure message=\"no &quot;retry&quot;\"/>"),
            "{junit}"
        );
        assert!(
            junit.contains("<skipped message=\"no policy given\"/>"),
            "{junit}"
        );
        assert!(
            junit.contains("value=\"device &lt;1&gt; &amp; co\""),
            "{junit}"
        );
    }
}
