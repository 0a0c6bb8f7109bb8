//! The text form of a [`DoctorReport`]: a header per device, the dtype × op-family table, the
//! throughput rows, the details of every cell that is not plainly fine, and the recommendation.

use super::{Cell, DoctorReport};
use plumb_core::plan::human_bytes;
use std::fmt::Write;

const W: usize = 12;

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Short text of a cell and its colour code.
fn cell_text(c: &Cell) -> (String, &'static str) {
    let level = match c.decision.as_str() {
        "native" => "N".to_string(),
        "emulated" => "E".to_string(),
        "upcast" => "↑f32".to_string(),
        "cpu-fallback" => "cpu".to_string(),
        other => other.to_string(),
    };
    let err = c
        .max_rel_error
        .map(|e| format!("{e:.0e}"))
        .unwrap_or_else(|| "∞".into());
    match c.status.as_str() {
        "n/a" => ("·".into(), "2"),
        "refused" => ("refused".into(), "31"),
        "failed" => ("FAILED".into(), "31"),
        "inaccurate" => (format!("{level} {err} !"), "31;1"),
        _ => {
            let code = if c.decision == "native" { "32" } else { "33" };
            (format!("{level} {err}"), code)
        }
    }
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// Render the report as text; ANSI colours only when `color`.
pub fn render_text(r: &DoctorReport, color: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "plumb doctor ({} mode), plumb {}",
        r.mode, r.plumb_version
    );
    if !r.gpu_found {
        let why = r
            .notes
            .iter()
            .find(|n| n.starts_with("gpu:"))
            .cloned()
            .unwrap_or_else(|| "gpu: none probed".into());
        let _ = writeln!(o, "{}", paint(&format!("no GPU: {why}"), "33", color));
    }
    for n in &r.notes {
        if !n.starts_with("gpu:") || r.gpu_found {
            let _ = writeln!(o, "note: {n}");
        }
    }
    for d in &r.devices {
        let _ = writeln!(o);
        let prof = d
            .profile
            .as_ref()
            .map(|p| format!(", profile {p}"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "{}: {} ({:?}, {}, driver {}{prof})",
            paint(&d.id, "1", color),
            d.name,
            d.kind,
            d.api,
            d.driver
        );
        let mem = d
            .memory_bytes
            .map(human_bytes)
            .unwrap_or_else(|| "unknown".into());
        let maxbuf = if d.max_buffer_bytes == u64::MAX {
            "unlimited".to_string()
        } else {
            human_bytes(d.max_buffer_bytes)
        };
        let _ = writeln!(
            o,
            "  memory {mem}, max buffer {maxbuf}, policy {}",
            d.policy
        );
        if !d.features.is_empty() {
            let _ = writeln!(o, "  features: {}", d.features.join(" "));
        }
        if let Some(s) = &d.skipped {
            let _ = writeln!(o, "  not probed: {s}");
            continue;
        }
        let mut dtypes = Vec::new();
        let mut fams = Vec::new();
        for c in &d.cells {
            if !dtypes.contains(&c.dtype) {
                dtypes.push(c.dtype);
            }
            if !fams.contains(&c.family) {
                fams.push(c.family);
            }
        }
        let mut head = format!("  {}", pad("", W));
        for dt in &dtypes {
            head.push_str(&pad(dt.name(), W));
        }
        let _ = writeln!(o, "{}", head.trim_end());
        for f in &fams {
            let mut line = format!("  {}", pad(f.name(), W));
            let mut rate_line = format!("  {}", pad("", W));
            let mut unit = "";
            for dt in &dtypes {
                let Some(c) = d.cells.iter().find(|c| c.family == *f && c.dtype == *dt) else {
                    line.push_str(&pad("", W));
                    rate_line.push_str(&pad("", W));
                    continue;
                };
                let (t, code) = cell_text(c);
                line.push_str(&paint(&pad(&t, W), code, color));
                match &c.throughput {
                    Some(tp) => {
                        unit = if tp.unit == "GB/s" { "GB/s" } else { "GFLOP/s" };
                        rate_line.push_str(&pad(&format!("{:.3}", tp.value), W));
                    }
                    None => rate_line.push_str(&pad("", W)),
                }
            }
            let _ = writeln!(o, "{}", line.trim_end());
            if !unit.is_empty() {
                let _ = writeln!(o, "{}  {unit}", rate_line.trim_end());
            }
        }
        let odd: Vec<&Cell> = d
            .cells
            .iter()
            .filter(|c| c.status != "n/a" && (c.status != "ok" || c.decision != "native"))
            .collect();
        if !odd.is_empty() {
            let _ = writeln!(o, "  details:");
            for c in odd {
                let err = c
                    .max_rel_error
                    .map(|e| format!("error {e:.1e} (tolerance {:.0e}); ", c.tolerance))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "    {} {}: {}: {}; {err}{}",
                    c.family, c.dtype, c.status, c.decision_detail, c.note
                );
            }
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "legend: N native, E emulated, ↑f32 upcast to f32, cpu CPU fallback; the number is the \
         worst relative error against the f64 oracle; ! inaccurate (above tolerance); · not applicable"
    );
    match &r.recommendation {
        Some(rec) => {
            let _ = writeln!(
                o,
                "{} {}",
                paint(
                    &format!("recommended: {}, {} for inference", rec.device, rec.dtype),
                    "1;32",
                    color
                ),
                format_args!("— {}", rec.reason)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "{}",
                paint(
                    "recommended: none — no probed device runs f32 natively and accurately",
                    "31",
                    color
                )
            );
        }
    }
    o
}
