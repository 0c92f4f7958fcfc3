//! The report as a picture: one bar per figure and peer, how many times better
//! iotcore is (log scale, 1× marked), with each target as a tick.

use plotters::prelude::*;

use crate::error::{BenchError, BenchResult};
use crate::report::{Report, Target};

/// One bar: `label`, iotcore's ratio, and the target ratio if there is one.
struct Bar {
    label: String,
    ratio: f64,
    target: Option<f64>,
}

fn bars(report: &Report) -> Vec<Bar> {
    let mut bars = Vec::new();
    for figure in &report.figures {
        for peer in &figure.peers {
            let Some(ratio) = figure.ratio(peer) else {
                continue;
            };
            let target = figure.targets.iter().find_map(|t| match t {
                Target::Times { peer: name, times } if peer.who.starts_with(name.as_str()) => {
                    Some(*times)
                }
                _ => None,
            });
            // "awsiotsdk 1.31.0 (awscrt 0.36.1)" → "awsiotsdk 1.31.0": the table has the rest.
            let who = peer.who.split(" (").next().unwrap_or(&peer.who);
            bars.push(Bar {
                label: format!("{}: {} vs {who}", figure.group.title(), figure.name),
                ratio,
                target,
            });
        }
    }
    bars
}

/// Writes the SVG; an error if the report has no figure with a measured peer.
pub fn svg(report: &Report) -> BenchResult<String> {
    let bars = bars(report);
    if bars.is_empty() {
        return Err(BenchError::new(
            "plotting",
            "no figure has both iotcore and a peer measured",
        ));
    }
    let (low, high) = bars.iter().fold((0.5f64, 2.0f64), |(lo, hi), b| {
        let t = b.target.unwrap_or(b.ratio);
        (lo.min(b.ratio).min(t), hi.max(b.ratio).max(t))
    });
    let range = (low / 1.5)..(high * 1.5);
    let rows = bars.len();
    let height = 80 + 22 * rows as u32;
    // The labels are drawn at 12 px: about 6.5 px a character.
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let label_width = (longest as f64 * 6.5) as u32 + 20;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (label_width + 700, height)).into_drawing_area();
        draw(&root, &bars, range, label_width)
            .map_err(|e| BenchError::new("plotting", e.to_string()))?;
        root.present()
            .map_err(|e| BenchError::new("plotting", e.to_string()))?;
    }
    Ok(svg)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    bars: &[Bar],
    range: std::ops::Range<f64>,
    label_width: u32,
) -> DrawResult {
    root.fill(&WHITE)?;
    let rows = bars.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "iotcore: how many times better than each peer (log scale; right of 1× = better; black tick = target)",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(label_width)
        .build_cartesian_2d(range.log_scale(), 0f64..rows)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let row = y.floor();
            let index = bars.len() as f64 - 1.0 - row;
            if (y - row - 0.5).abs() < 0.01 && index >= 0.0 {
                bars.get(index as usize)
                    .map_or_else(String::new, |b| b.label.clone())
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| format!("{x:.2}×"))
        .label_style(("sans-serif", 12))
        .draw()?;
    for (index, bar) in bars.iter().enumerate() {
        let y = rows - 1.0 - index as f64;
        let good = bar.ratio >= bar.target.unwrap_or(1.0);
        let color = if good { GREEN.mix(0.7) } else { RED.mix(0.7) };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(1.0, y + 0.2), (bar.ratio, y + 0.8)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{:.2}×", bar.ratio),
            (bar.ratio.max(1.0) * 1.03, y + 0.65),
            ("sans-serif", 11),
        )))?;
        if let Some(target) = bar.target {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(target, y + 0.05), (target, y + 0.95)],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, 0.0), (1.0, rows)],
        BLACK.stroke_width(1),
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Better, Environment, Figure, Group, Measurement};

    fn report(figures: Vec<Figure>) -> Report {
        Report {
            command: "iotcore bench".into(),
            runs: 1,
            quick: true,
            environment: Environment {
                date: String::new(),
                machine: String::new(),
                load_at_start: String::new(),
                load_at_end: String::new(),
                rustc: String::new(),
                commit: String::new(),
                peers: Vec::new(),
            },
            figures,
            failures: Vec::new(),
        }
    }

    #[test]
    fn draws_a_bar_per_measured_peer() {
        let figure = Figure::new(
            Group::ClientThroughput,
            "QoS 0, 64 B",
            "msgs/s",
            Better::Higher,
            Measurement::new("iotcore", vec![3000.0]),
        )
        .peer(Measurement::new("rumqttc 0.25.1", vec![1000.0]))
        .peer(Measurement::skipped("paho-mqtt", "not installed"))
        .target(Target::Times {
            peer: "rumqttc".into(),
            times: 1.5,
        });
        let svg = svg(&report(vec![figure])).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("QoS 0, 64 B vs rumqttc 0.25.1"));
        assert!(svg.contains("3.00×"));
        assert!(!svg.contains("paho-mqtt"));
    }

    #[test]
    fn nothing_to_compare_is_an_error() {
        assert!(svg(&report(Vec::new())).is_err());
    }
}
