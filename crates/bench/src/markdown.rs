//! The report as Markdown: a header saying where and how it ran, then a table per
//! part of the suite.

use std::fmt::Write as _;

use crate::report::{Better, Figure, Group, Measurement, Report, Target};

/// The whole report; `plot` is the SVG's path relative to where the Markdown goes.
pub fn render(report: &Report, plot: Option<&str>) -> String {
    let env = &report.environment;
    let mut out = String::new();
    let _ = writeln!(out, "- Command: `{}`", report.command);
    let _ = writeln!(out, "- Date: {}", env.date);
    let _ = writeln!(out, "- Machine: {}", env.machine);
    let _ = writeln!(
        out,
        "- Load average (1/5/15 min): {} at the start, {} at the end",
        env.load_at_start, env.load_at_end
    );
    let _ = writeln!(out, "- Source: commit {}", env.commit);
    let _ = writeln!(out, "- Toolchain: {}, release profile", env.rustc);
    let _ = writeln!(out, "- Peers: {}", env.peers.join("; "));
    let _ = writeln!(
        out,
        "- Each figure: median of {} run{}{}; \"×\" says how many times better iotcore is \
         than the peer (above 1: iotcore is better), from the medians.",
        report.runs,
        if report.runs == 1 { "" } else { "s" },
        if report.quick {
            " of a --quick smoke run (fewer messages: not for comparison)"
        } else {
            ""
        }
    );
    if let Some(plot) = plot {
        let _ = writeln!(out, "\n![iotcore against its peers]({plot})");
    }
    for group in Group::ALL {
        let figures: Vec<&Figure> = report.figures.iter().filter(|f| f.group == group).collect();
        if figures.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {}\n", group.title());
        let _ = writeln!(
            out,
            "| Figure | iotcore | Peers (× = iotcore's ratio) | Target |"
        );
        let _ = writeln!(out, "|---|---:|---|---|");
        for figure in &figures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                figure.name,
                measured(figure, &figure.subject),
                peers(figure),
                targets(figure)
            );
        }
        let mut notes: Vec<&str> = Vec::new();
        for note in figures.iter().filter_map(|f| f.note.as_deref()) {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(out);
            for note in notes {
                let _ = writeln!(out, "- {note}");
            }
        }
    }
    if !report.failures.is_empty() {
        let _ = writeln!(out, "\n### Not measured\n");
        for failure in &report.failures {
            let _ = writeln!(out, "- {failure}");
        }
    }
    out
}

/// `41,200 msgs/s (39,800–42,000)` or why it was skipped.
fn measured(figure: &Figure, m: &Measurement) -> String {
    let Some(median) = m.median() else {
        return format!(
            "not measured: {}",
            m.skipped.as_deref().unwrap_or("no runs")
        );
    };
    let mut text = format!("{} {}", number(median), figure.unit);
    if m.runs.len() > 1 {
        let low = m.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let high = m.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = write!(text, " ({}–{})", number(low), number(high));
    }
    text
}

fn peers(figure: &Figure) -> String {
    if figure.peers.is_empty() {
        return "no peer".to_owned();
    }
    figure
        .peers
        .iter()
        .map(|peer| {
            let ratio = figure
                .ratio(peer)
                .map_or_else(String::new, |r| format!(" → **{r:.2}×**"));
            format!("{}: {}{ratio}", peer.who, measured(figure, peer))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn targets(figure: &Figure) -> String {
    if figure.targets.is_empty() {
        return "—".to_owned();
    }
    figure
        .targets
        .iter()
        .map(|target| {
            let goal = match target {
                Target::Times { peer, times } => format!("≥ {times}× {peer}"),
                Target::Below { value } => match figure.better {
                    Better::Lower => format!("< {} {}", number(*value), figure.unit),
                    Better::Higher => format!("below {} {}", number(*value), figure.unit),
                },
            };
            let verdict = match figure.met(target) {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not measured",
            };
            format!("{goal}: {verdict}")
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Thousands separators above 1,000; three significant digits below.
pub fn number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        let digits = format!("{:.0}", value.abs());
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if value < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Environment, Measurement};

    #[test]
    fn numbers_are_grouped_or_rounded() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(1000.0), "1,000");
        assert_eq!(number(523.4), "523");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.2567), "0.26");
        assert_eq!(number(-4321.0), "-4,321");
    }

    #[test]
    fn tables_show_medians_ratios_and_verdicts() {
        let report = Report {
            command: "iotcore bench".into(),
            runs: 3,
            quick: false,
            environment: Environment {
                date: "2026-11-26 10:00 UTC".into(),
                machine: "test".into(),
                load_at_start: "0".into(),
                load_at_end: "0".into(),
                rustc: "rustc".into(),
                commit: "abc1234".into(),
                peers: vec!["rumqttc 0.25.1".into()],
            },
            figures: vec![
                Figure::new(
                    Group::ClientThroughput,
                    "QoS 0, 64 B",
                    "msgs/s",
                    Better::Higher,
                    Measurement::new("iotcore", vec![3000.0, 2000.0, 4000.0]),
                )
                .peer(Measurement::new(
                    "rumqttc 0.25.1",
                    vec![1000.0, 1000.0, 1000.0],
                ))
                .peer(Measurement::skipped("paho-mqtt", "no venv"))
                .target(Target::Times {
                    peer: "rumqttc".into(),
                    times: 1.5,
                }),
            ],
            failures: vec!["Latency: boom".into()],
        };
        let text = render(&report, Some("plot.svg"));
        assert!(
            text.contains("| QoS 0, 64 B | 3,000 msgs/s (2,000–4,000) |"),
            "{text}"
        );
        assert!(text.contains("rumqttc 0.25.1: 1,000 msgs/s (1,000–1,000) → **3.00×**"));
        assert!(text.contains("paho-mqtt: not measured: no venv"));
        assert!(text.contains("≥ 1.5× rumqttc: met"));
        assert!(text.contains("![iotcore against its peers](plot.svg)"));
        assert!(text.contains("- Latency: boom"));
    }
}
