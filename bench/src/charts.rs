//! Charts of the contention scenario (SVG, drawn with `plotters`): one file
//! per engine and K, goodput and p99 against tasks, one line per strategy,
//! one column of panels per process count P. Panels of one row share their
//! y axis, so P = 1 and P = 4 read side by side.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::workload::Strategy;

/// The median of one contention cell, as charted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Median {
    pub(crate) k: usize,
    pub(crate) t: usize,
    pub(crate) procs: usize,
    pub(crate) strategy: Strategy,
    /// Committed increments per second.
    pub(crate) goodput: f64,
    /// p99 latency of committed calls, ms (NaN when none committed).
    pub(crate) p99_ms: f64,
}

const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 360;
const LEGEND_HEIGHT: u32 = 40;
const FONT: &str = "sans-serif";

/// Writes `contention-<backend>-k<K>.svg` into `dir` for every K in
/// `medians`; returns the paths written.
pub(crate) fn contention(
    dir: &Path,
    backend: &str,
    ops: usize,
    medians: &[Median],
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let ks: BTreeSet<usize> = medians.iter().map(|m| m.k).collect();
    let mut written = Vec::new();
    for k in ks {
        let cells: Vec<Median> = medians.iter().copied().filter(|m| m.k == k).collect();
        let path = dir.join(format!("contention-{backend}-k{k}.svg"));
        let rows = if k == 1 {
            "one hot row".to_owned()
        } else {
            format!("{k} hot rows")
        };
        draw(
            &path,
            &format!("contention · {backend} · {rows} · {ops} increments per cell (medians)"),
            &cells,
        )?;
        written.push(path);
    }
    Ok(written)
}

fn draw(path: &Path, title: &str, cells: &[Median]) -> Result<(), Box<dyn Error>> {
    let tasks: Vec<usize> = cells
        .iter()
        .map(|m| m.t)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let procs: Vec<usize> = cells
        .iter()
        .map(|m| m.procs)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let strategies: Vec<Strategy> = cells
        .iter()
        .map(|m| m.strategy)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let root =
        SVGBackend::new(path, (WIDTH, 2 * PANEL_HEIGHT + LEGEND_HEIGHT + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 20))?;
    let (legend, body) = root.split_vertically(LEGEND_HEIGHT);
    draw_legend(&legend, &strategies)?;
    let panels = body.split_evenly((2, procs.len()));

    let finite = |f: fn(&Median) -> f64| -> Vec<f64> {
        cells.iter().map(f).filter(|v| v.is_finite()).collect()
    };
    let goodput_max = finite(|m| m.goodput).into_iter().fold(1.0, f64::max) * 1.1;
    let p99s = finite(|m| m.p99_ms);
    let p99_lo = p99s.iter().copied().fold(f64::INFINITY, f64::min).max(0.1) / 1.5;
    let p99_hi = p99s.iter().copied().fold(1.0, f64::max) * 1.5;
    let p99_lo = if p99_lo.is_finite() { p99_lo } else { 0.1 };

    for (col, &p) in procs.iter().enumerate() {
        let of_p: Vec<Median> = cells.iter().copied().filter(|m| m.procs == p).collect();
        panel(
            &panels[col],
            &format!("goodput, ops/s · P = {p} process{}", plural(p)),
            &tasks,
            &strategies,
            &of_p,
            0.0..goodput_max,
            |m| m.goodput,
        )?;
        panel(
            &panels[procs.len() + col],
            &format!(
                "p99 latency of committed calls, ms (log) · P = {p} process{}",
                plural(p)
            ),
            &tasks,
            &strategies,
            &of_p,
            (p99_lo..p99_hi).log_scale(),
            |m| m.p99_ms,
        )?;
    }
    root.present()?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "es" }
}

/// One panel: `value` of each strategy against the tasks (evenly spaced:
/// the task counts grow by a factor, so this is their log scale).
fn panel<DB, Y>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    tasks: &[usize],
    strategies: &[Strategy],
    cells: &[Median],
    y: Y,
    value: fn(&Median) -> f64,
) -> Result<(), Box<dyn Error>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let x_hi = tasks.len().saturating_sub(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 15))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3..x_hi + 0.3, y)?;
    let task_label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            tasks
                .get(i as usize)
                .map_or_else(String::new, |t| format!("T = {t}"))
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(tasks.len() * 4 + 1)
        .x_label_formatter(&task_label)
        .y_label_formatter(&|v: &f64| {
            if v.abs() >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT, 13))
        .draw()?;
    for &s in strategies {
        let points: Vec<(f64, f64)> = tasks
            .iter()
            .enumerate()
            .filter_map(|(i, &t)| {
                let m = cells.iter().find(|m| m.t == t && m.strategy == s)?;
                let v = value(m);
                v.is_finite().then_some((i as f64, v))
            })
            .collect();
        let style = style_of(s);
        chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
        chart.draw_series(
            points
                .iter()
                .map(|&pt| Circle::new(pt, 4, style.color.filled())),
        )?;
    }
    Ok(())
}

/// A row of line samples and strategy names above the panels.
fn draw_legend<DB>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    strategies: &[Strategy],
) -> Result<(), Box<dyn Error>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let step = (WIDTH as i32 - 40) / strategies.len().max(1) as i32;
    for (i, &s) in strategies.iter().enumerate() {
        let x = 20 + i as i32 * step;
        let y = LEGEND_HEIGHT as i32 / 2;
        area.draw(&PathElement::new(vec![(x, y), (x + 28, y)], style_of(s)))?;
        area.draw(&Circle::new((x + 14, y), 4, style_of(s).color.filled()))?;
        area.draw(&Text::new(s.name(), (x + 34, y - 8), (FONT, 15)))?;
    }
    Ok(())
}

/// A colour per strategy, the same in every chart; conflictkit's own
/// strategies drawn thicker.
fn style_of(s: Strategy) -> ShapeStyle {
    let (color, width) = match s {
        Strategy::CkAdaptive => (RGBColor(0x1f, 0x77, 0xb4), 3),
        Strategy::CkKeyed => (RGBColor(0x94, 0x67, 0xbd), 3),
        Strategy::CkBatch => (RGBColor(0xff, 0x7f, 0x0e), 3),
        Strategy::CkOff => (RGBColor(0x17, 0xbe, 0xcf), 2),
        Strategy::Immediate => (RGBColor(0x7f, 0x7f, 0x7f), 2),
        Strategy::JitterHand => (RGBColor(0xbc, 0xbd, 0x22), 2),
        Strategy::ForUpdate => (RGBColor(0xd6, 0x27, 0x28), 3),
        Strategy::SingleUpdate => (RGBColor(0x2c, 0xa0, 0x2c), 2),
        Strategy::HandSessionIso => (RGBColor(0x8c, 0x56, 0x4b), 2),
    };
    color.stroke_width(width)
}
