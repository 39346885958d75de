//! Server-rendered SVG charts (written here): a stacked bar chart of shipments by day
//! and status, and a small bar sparkline. Each bar has a `<title>` with its numbers,
//! and every chart a text summary beside it, so nothing is told by colour alone.

use chrono::NaiveDate;
use maud::{Markup, html};

/// A colour per status, the same on every chart (text labels go with it).
pub fn colour(status: &str) -> &'static str {
    match status {
        "delivered" => "#1a7f37",
        "exception" => "#c62828",
        "attempt_fail" => "#d9822b",
        "out_for_delivery" => "#00838f",
        "in_transit" => "#0969da",
        "info_received" => "#79a7e0",
        "available_for_pickup" => "#8250df",
        "expired" => "#57606a",
        _ => "#afb8c1",
    }
}

/// One day's bar: its x, its day, and its segments (y, height, status, count).
type Bar<'a> = (f64, &'a NaiveDate, Vec<(f64, f64, &'a str, i64)>);

/// Stacked bars: one per day in `days`, segments from `(day, status, count)`.
pub fn stacked_days(days: &[NaiveDate], data: &[(NaiveDate, &str, i64)], statuses: &[&str]) -> Markup {
    let (w, h, left, bottom, top) = (720.0_f64, 220.0_f64, 40.0_f64, 24.0_f64, 8.0_f64);
    let total = |d: &NaiveDate| data.iter().filter(|(x, _, _)| x == d).map(|(_, _, n)| *n).sum::<i64>();
    let max = days.iter().map(total).max().unwrap_or(0).max(1) as f64;
    let slot = (w - left) / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(2.0);
    let scale = (h - bottom - top) / max;
    // Per day: its x and its segments (y, height, status, count), bottom up.
    let bars: Vec<Bar> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = left + slot * i as f64 + (slot - bar) / 2.0;
            let mut y = h - bottom;
            let mut segments = Vec::new();
            for s in statuses {
                let n = data.iter().find(|(x, st, _)| x == d && st == s).map_or(0, |(_, _, n)| *n);
                if n > 0 {
                    let hgt = n as f64 * scale;
                    y -= hgt;
                    segments.push((y, hgt, *s, n));
                }
            }
            (x, d, segments)
        })
        .collect();
    html! {
        svg.chart viewBox={ "0 0 " (w) " " (h) } role="img" aria-label="Shipments created per day, by current status" {
            line x1=(left) y1=(h - bottom) x2=(w) y2=(h - bottom) stroke="#8c959f" {}
            text x="2" y=(top + 10.0) font-size="11" fill="#57606a" { (max as i64) }
            text x="2" y=(h - bottom) font-size="11" fill="#57606a" { "0" }
            @for (i, (x, d, segments)) in bars.iter().enumerate() {
                @for (y, hgt, s, n) in segments {
                    rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{bar:.1}")) height=(format!("{hgt:.1}")) fill=(colour(s)) {
                        title { (d) ": " (n) " " (s) }
                    }
                }
                @if i % 2 == 0 || days.len() <= 7 {
                    text x=(format!("{:.1}", x + bar / 2.0)) y=(h - 6.0) font-size="10" text-anchor="middle" fill="#57606a" { (d.format("%m-%d")) }
                }
            }
        }
    }
}

/// A small bar sparkline of `values` (e.g. calls per 5 minutes), with `label` for readers.
pub fn sparkline(values: &[i64], label: &str) -> Markup {
    let (w, h) = (120.0_f64, 24.0_f64);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = w / values.len().max(1) as f64;
    html! {
        svg.spark width="120" height="24" viewBox={ "0 0 " (w) " " (h) } role="img" aria-label=(label) {
            @for (i, v) in values.iter().enumerate() {
                @let hgt = (*v as f64 / max * (h - 2.0)).max(if *v > 0 { 1.0 } else { 0.0 });
                rect x=(format!("{:.1}", i as f64 * slot + 1.0)) y=(format!("{:.1}", h - hgt)) width=(format!("{:.1}", slot - 2.0)) height=(format!("{hgt:.1}")) fill="#0969da" {
                    title { (v) }
                }
            }
        }
    }
}
