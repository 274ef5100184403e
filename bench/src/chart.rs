//! docs/bench.png: batch wall time against the ideal (left), sustained throughput under the
//! rate limits (right), each against moto and with the store in memory. Text needs a font: the bench script passes a system TTF (Debian's
//! fonts-dejavu-core); without one the chart is drawn without any text, and docs/bench.md
//! describes it.

use std::path::Path;

use plotters::prelude::*;

use crate::ceiling::Ceiling;
use crate::scenarios::{BatchRun, Throughput};

const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const GREY: RGBColor = RGBColor(0xb0, 0xb0, 0xb0);
const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const PINK: RGBColor = RGBColor(0xe3, 0x77, 0xc2);
const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const LIGHT_GREEN: RGBColor = RGBColor(0x98, 0xdf, 0x8a);

/// Registers the font; `false` when there is none (text is then left out).
pub fn load_font(path: Option<&Path>) -> bool {
    let Some(path) = path else { return false };
    let Ok(bytes) = std::fs::read(path) else { return false };
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice())).is_ok()
}

pub fn draw(
    path: &Path,
    batches: &[BatchRun],
    throughputs: &[Throughput],
    ceiling: &Ceiling,
    text: bool,
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);

    // Left: wall time and ideal per batch (log scale), grouped by concurrency.
    let max = batches.iter().map(|b| b.wall.as_secs_f64().max(b.ideal.as_secs_f64())).fold(0.1, f64::max) * 8.0;
    let mut chart = ChartBuilder::on(&left);
    chart.margin(20).x_label_area_size(if text { 50 } else { 10 }).y_label_area_size(if text { 60 } else { 10 });
    if text {
        chart.caption("Batch wall time vs ideal (s, log scale)", ("sans-serif", 22));
    }
    let mut chart = chart.build_cartesian_2d(0f64..batches.len() as f64, (0.05f64..max).log_scale())?;
    if text {
        chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc("seconds").label_style(("sans-serif", 14)).draw()?;
    }
    if text {
        chart.draw_series(batches.iter().enumerate().map(|(i, b)| {
            let top = b.wall.max(b.ideal).as_secs_f64() * 1.9;
            Text::new(format!("{}×c{}", b.messages, b.concurrency), (i as f64 + 0.1, top), ("sans-serif", 14))
        }))?;
    }
    chart
        .draw_series(batches.iter().enumerate().map(|(i, b)| {
            Rectangle::new([(i as f64 + 0.08, 0.05), (i as f64 + 0.34, b.ideal.as_secs_f64())], GREY.filled())
        }))?
        .label("ideal: waves × (Twilio round trip + one write)")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], GREY.filled()));
    chart
        .draw_series(batches.iter().enumerate().map(|(i, b)| {
            Rectangle::new([(i as f64 + 0.37, 0.05), (i as f64 + 0.63, b.wall.as_secs_f64())], BLUE.filled())
        }))?
        .label("against moto (release send under the Runtime API)")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], BLUE.filled()));
    // The in-memory runs of the same configurations: the median, and a line over min–max.
    let in_memory: Vec<(f64, (f64, f64, f64))> = batches
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((i as f64, ceiling.batch(b.messages, b.concurrency)?.wall_ms())))
        .map(|(i, (min, median, max))| (i, (min / 1000.0, median / 1000.0, max / 1000.0)))
        .collect();
    chart
        .draw_series(
            in_memory
                .iter()
                .map(|&(i, (_, median, _))| Rectangle::new([(i + 0.66, 0.05), (i + 0.92, median)], GREEN.filled())),
        )?
        .label("store in memory, send in process (median of the runs)")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], GREEN.filled()));
    chart.draw_series(
        in_memory
            .iter()
            .map(|&(i, (min, _, max))| PathElement::new(vec![(i + 0.79, min), (i + 0.79, max)], BLACK.stroke_width(2))),
    )?;
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }

    // Right: accepted messages per second and 429s per second for each throughput run, with
    // each run's limit; of the in-memory runs, the one whose held rate is the median.
    let mut in_memory: Vec<&Throughput> = ceiling.throughputs.iter().map(|t| &t.run).collect();
    in_memory.sort_by(|a, b| a.held.total_cmp(&b.held));
    let in_memory = in_memory.get(in_memory.len() / 2).copied();
    let runs: Vec<(&Throughput, RGBColor, RGBColor, RGBColor, &str)> = throughputs
        .iter()
        .enumerate()
        .map(|(i, t)| if i == 0 { (t, BLUE, RED, ORANGE, "moto") } else { (t, PURPLE, PINK, ORANGE, "moto") })
        .chain(in_memory.map(|t| (t, GREEN, RED, LIGHT_GREEN, "in memory")))
        .collect();
    if !runs.is_empty() {
        let seconds = runs.iter().map(|r| r.0.timeline.len()).max().unwrap_or(1).max(1) as f64;
        let top = runs
            .iter()
            .map(|r| r.0)
            .flat_map(|t| {
                t.timeline.iter().chain(&t.throttled_timeline).copied().map(f64::from).chain([f64::from(t.rate_limit)])
            })
            .fold(1.0, f64::max)
            * 1.3;
        let mut chart = ChartBuilder::on(&right);
        chart.margin(20).x_label_area_size(if text { 50 } else { 10 }).y_label_area_size(if text { 60 } else { 10 });
        if text {
            chart.caption("Sustained throughput under the rate limit (per second)", ("sans-serif", 22));
        }
        let mut chart = chart.build_cartesian_2d(0f64..seconds, 0f64..top)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("seconds from start")
                .y_desc("per second")
                .label_style(("sans-serif", 14))
                .draw()?;
        }
        let mut limits_drawn = Vec::new();
        for &(t, accepted, limit, refused, store) in &runs {
            let what = format!("{store}, limit {}/s, {} messages", t.rate_limit, t.messages);
            if !limits_drawn.contains(&t.rate_limit) {
                limits_drawn.push(t.rate_limit);
                chart
                    .draw_series(LineSeries::new(
                        vec![(0.0, f64::from(t.rate_limit)), (seconds, f64::from(t.rate_limit))],
                        limit.stroke_width(1),
                    ))?
                    .label(format!("limit {}/s", t.rate_limit))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], limit.stroke_width(1)));
            }
            chart
                .draw_series(LineSeries::new(
                    t.timeline.iter().enumerate().map(|(i, v)| (i as f64 + 0.5, f64::from(*v))),
                    accepted.stroke_width(2),
                ))?
                .label(format!("accepted by Twilio ({what})"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], accepted.stroke_width(2)));
            if t.throttled > 0 {
                chart
                    .draw_series(LineSeries::new(
                        t.throttled_timeline.iter().enumerate().map(|(i, v)| (i as f64 + 0.5, f64::from(*v))),
                        refused.stroke_width(1),
                    ))?
                    .label(format!("answered 429 ({what})"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], refused.stroke_width(1)));
            }
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
