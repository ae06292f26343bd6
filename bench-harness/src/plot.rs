//! `--plot DIR`: throughput-vs-threads and throughput-vs-batch-size charts, SVG and PNG.
//!
//! Each chart has two panels: operations per second (log scale) and the ratio to the raw
//! single-thread aws-lc-rs loop (linear), with one line per combination of the other swept
//! parameters, and the raw baseline dashed. Text in the PNGs is drawn with DejaVu Sans, which
//! ships inside the `dejavu` crate, so charts render the same with or without system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{human, human_size, short_alg, Point, Report};
use crate::BenchError;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 540;
const FONT: &str = "sans-serif";

static FONTS: Once = Once::new();

fn register_fonts() {
    FONTS.call_once(|| {
        // The bytes are static and valid TrueType; a failure here would only lose text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One line: its label, (x, ops/s, right-panel value) points, and the raw baseline at the same x
/// values.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) points: Vec<(f64, f64, Option<f64>)>,
    pub(crate) raw: Vec<(f64, f64)>,
}

/// One chart file: operations per second on the left, a second measure (by default the ratio to
/// the raw loop) on the right.
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) x_label: &'static str,
    pub(crate) x_log: bool,
    pub(crate) series: Vec<Series>,
    /// The footer: what the dashed lines are.
    pub(crate) raw_label: &'static str,
    /// The left panel's caption (the rate, on a log scale).
    pub(crate) left_caption: &'static str,
    /// The right panel's caption.
    pub(crate) right_caption: &'static str,
    /// A dashed horizontal line on the right panel (1.0: as fast as one raw core).
    pub(crate) right_reference: Option<f64>,
}

/// The panels' captions for the sweep's charts: the rate, and the ratio to the raw loop.
const OPS_CAPTION: &str = "operations per second (log scale)";
const RATIO_CAPTION: &str = "engine / raw aws-lc-rs on 1 thread";

/// Writes every chart of the report into `dir`; returns the files written.
pub fn write_charts(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    register_fonts();
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::Output(format!("creating {}: {e}", dir.display())))?;
    let groups = crate::dedup(report.points.iter().map(|p| (p.workload, p.key_spec)));
    let mut written = Vec::new();
    for (workload, spec) in groups {
        let points: Vec<&Point> = report
            .points
            .iter()
            .filter(|p| p.workload == workload && p.key_spec == spec)
            .collect();
        let alg = short_alg(&points[0].algorithm, spec);
        let stem = if workload.family() == crate::workload::KeyFamily::Symmetric {
            workload.name().to_owned()
        } else {
            format!("{}-{}", workload.name(), alg.to_ascii_lowercase())
        };
        let name = if workload.family() == crate::workload::KeyFamily::Symmetric {
            workload.name().to_owned()
        } else {
            format!("{} {alg}", workload.name())
        };
        let charts = [
            (by_threads(&name, &points), format!("{stem}-vs-threads")),
            (by_batch(&name, &points), format!("{stem}-vs-batch")),
        ];
        for (chart, file) in charts {
            written.extend(write_chart(&chart, dir, &file)?);
        }
    }
    Ok(written)
}

/// Draws `chart` as `dir/file.svg` and `dir/file.png` (`dir` must exist); returns both paths.
pub(crate) fn write_chart(
    chart: &Chart,
    dir: &Path,
    file: &str,
) -> Result<Vec<PathBuf>, BenchError> {
    register_fonts();
    let svg = dir.join(format!("{file}.svg"));
    let png = dir.join(format!("{file}.png"));
    draw(
        SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area(),
        chart,
    )
    .map_err(|e| BenchError::Output(format!("drawing {}: {e}", svg.display())))?;
    draw(
        BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area(),
        chart,
    )
    .map_err(|e| BenchError::Output(format!("drawing {}: {e}", png.display())))?;
    Ok(vec![svg, png])
}

fn multi<T: PartialEq + Copy>(points: &[&Point], f: impl Fn(&Point) -> T) -> bool {
    points.iter().any(|p| f(p) != f(points[0]))
}

/// The points grouped by `key`, groups in the order their first point comes.
fn groups<'p, K: PartialEq>(
    points: &[&'p Point],
    key: impl Fn(&Point) -> K,
) -> Vec<(K, Vec<&'p Point>)> {
    let mut groups: Vec<(K, Vec<&Point>)> = Vec::new();
    for &p in points {
        let k = key(p);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(p),
            None => groups.push((k, vec![p])),
        }
    }
    groups
}

fn by_threads(name: &str, points: &[&Point]) -> Chart {
    let show_size = multi(points, |p| p.size) || points[0].workload.uses_size();
    let show_callers = multi(points, |p| p.callers);
    let series = groups(points, |p| (p.size, p.batch, p.callers))
        .into_iter()
        .map(|((size, batch, callers), mut pts)| {
            pts.sort_by_key(|p| p.threads);
            let mut label = Vec::new();
            if show_size {
                label.push(human_size(size));
            }
            label.push(format!("batch {batch}"));
            if show_callers {
                label.push(format!("{callers} callers"));
            }
            Series {
                label: label.join(", "),
                points: pts
                    .iter()
                    .map(|p| (f64::from(p.threads), p.ops_per_sec.median, p.vs_raw))
                    .collect(),
                // Ideal scaling: the raw single-thread rate times the thread count.
                raw: pts
                    .iter()
                    .filter_map(|p| {
                        p.raw_ops_per_sec
                            .map(|r| (f64::from(p.threads), r * f64::from(p.threads)))
                    })
                    .collect(),
            }
        })
        .collect();
    Chart {
        title: format!("{name}: throughput vs engine threads"),
        x_label: "engine worker threads",
        x_log: false,
        series,
        raw_label: "dashed: raw aws-lc-rs 1-thread rate x threads (ideal scaling)",
        left_caption: OPS_CAPTION,
        right_caption: RATIO_CAPTION,
        right_reference: Some(1.0),
    }
}

fn by_batch(name: &str, points: &[&Point]) -> Chart {
    let show_size = multi(points, |p| p.size) || points[0].workload.uses_size();
    let show_callers = multi(points, |p| p.callers);
    let series = groups(points, |p| (p.size, p.threads, p.callers))
        .into_iter()
        .map(|((size, threads, callers), mut pts)| {
            pts.sort_by_key(|p| p.batch);
            let mut label = Vec::new();
            if show_size {
                label.push(human_size(size));
            }
            label.push(format!(
                "{threads} thread{}",
                if threads == 1 { "" } else { "s" }
            ));
            if show_callers {
                label.push(format!("{callers} callers"));
            }
            Series {
                label: label.join(", "),
                points: pts
                    .iter()
                    .map(|p| (p.batch as f64, p.ops_per_sec.median, p.vs_raw))
                    .collect(),
                raw: pts
                    .iter()
                    .filter_map(|p| p.raw_ops_per_sec.map(|r| (p.batch as f64, r)))
                    .collect(),
            }
        })
        .collect();
    Chart {
        title: format!("{name}: throughput vs batch size"),
        x_label: "requests per batch call (log scale)",
        x_log: true,
        series,
        raw_label: "dashed: raw aws-lc-rs loop, 1 thread",
        left_caption: OPS_CAPTION,
        right_caption: RATIO_CAPTION,
        right_reference: Some(1.0),
    }
}

/// Round values between `lo` and `hi` for a log axis: powers of ten, then 1-2-5, then finer
/// steps, whichever first gives at least four ticks.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const STEPS: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0],
        &[
            1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0,
        ],
    ];
    if !(lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let mut best = Vec::new();
    for steps in STEPS {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi {
            for m in steps {
                let t = m * decade;
                if t >= lo && t <= hi {
                    ticks.push(t);
                }
            }
            decade *= 10.0;
        }
        best = ticks;
        if best.len() >= 4 {
            break;
        }
    }
    best
}

/// Padded range of `values` (never empty).
fn range(values: impl Iterator<Item = f64>, pad_fraction: f64, min_pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * pad_fraction).max(min_pad);
    (lo - pad, hi + pad)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(&chart.title, (FONT, 24).into_font().style(FontStyle::Bold))
        .map_err(err)?;
    let (body, footer) = root.split_vertically(HEIGHT - 70);
    footer
        .draw(&Text::new(
            chart.raw_label,
            (20, 8),
            (FONT, 15).into_font().color(&BLACK.mix(0.75)),
        ))
        .map_err(err)?;
    let (left, right) = body.split_horizontally(WIDTH / 2);

    let tx = |x: f64| if chart.x_log { x.max(1e-9).log10() } else { x };
    let all_x = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| tx(p.0)));
    let (x0, x1) = range(all_x, 0.08, if chart.x_log { 0.15 } else { 0.3 });
    let x_fmt = |v: &f64| {
        if chart.x_log {
            let x = 10f64.powf(*v);
            if (x - x.round()).abs() < 0.05 * x {
                format!("{}", x.round())
            } else {
                String::new()
            }
        } else if (v - v.round()).abs() < 1e-6 {
            format!("{}", v.round())
        } else {
            String::new()
        }
    };
    let x_labels = if chart.x_log {
        ((x1 - x0).ceil() as usize + 1).clamp(2, 12)
    } else {
        ((x1 - x0).ceil() as usize + 1).clamp(2, 16)
    };

    // Left: ops/s on a log scale.
    let ys = chart.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.1)
            .chain(s.raw.iter().map(|r| r.1))
    });
    let (ly0, ly1) = range(ys.filter(|v| *v > 0.0).map(f64::log10), 0.08, 0.1);
    let mut ops = ChartBuilder::on(&left)
        .caption(chart.left_caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, ly0..ly1)
        .map_err(err)?;
    ops.configure_mesh()
        .x_desc(chart.x_label)
        .x_labels(x_labels)
        .x_label_formatter(&x_fmt)
        .y_labels(0)
        .disable_y_mesh()
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    // Round-number ticks (1-2-5 and finer) on the log axis, with their grid lines.
    let base = left.get_base_pixel();
    for tick in log_ticks(10f64.powf(ly0), 10f64.powf(ly1)) {
        let y = tick.log10();
        ops.draw_series(LineSeries::new(
            vec![(x0, y), (x1, y)],
            BLACK.mix(0.15).stroke_width(1),
        ))
        .map_err(err)?;
        let (px, py) = ops.backend_coord(&(x0, y));
        left.draw(&Text::new(
            human(tick),
            (px - base.0 - 8, py - base.1),
            (FONT, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
    }
    for (i, s) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|p| (tx(p.0), p.1.log10()))
            .collect();
        ops.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        ops.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
        let raw: Vec<(f64, f64)> = s
            .raw
            .iter()
            .filter(|r| r.1 > 0.0)
            .map(|r| (tx(r.0), r.1.log10()))
            .collect();
        if raw.len() == 1 {
            // A single baseline value: a short dashed tick around it.
            let (x, y) = raw[0];
            let w = (x1 - x0) * 0.04;
            ops.draw_series(DashedLineSeries::new(
                vec![(x - w, y), (x + w, y)],
                6,
                4,
                color.stroke_width(1),
            ))
            .map_err(err)?;
        } else if raw.len() > 1 {
            ops.draw_series(DashedLineSeries::new(raw, 6, 4, color.stroke_width(1)))
                .map_err(err)?;
        }
    }
    ops.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()
        .map_err(err)?;

    // Right: the ratio to the raw single-thread loop.
    let ratios = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.2));
    let r_max = ratios.fold(chart.right_reference.unwrap_or(0.0), f64::max) * 1.15;
    let r_max = if r_max > 0.0 { r_max } else { 1.0 };
    let mut ratio = ChartBuilder::on(&right)
        .caption(chart.right_caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, 0.0..r_max)
        .map_err(err)?;
    ratio
        .configure_mesh()
        .x_desc(chart.x_label)
        .x_labels(x_labels)
        .x_label_formatter(&x_fmt)
        .y_labels(10)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    // The reference line (for ratios, 1.0: as fast as one raw core).
    if let Some(r) = chart.right_reference {
        ratio
            .draw_series(DashedLineSeries::new(
                vec![(x0, r), (x1, r)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?;
    }
    for (i, s) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| p.2.map(|r| (tx(p.0), r)))
            .collect();
        ratio
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?;
        ratio
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
