//! Prints the CPU benchmark cases as the peers' RESULT lines (same timing method as
//! ../shared/peers: one warm-up, reps so a sample lasts ≥ 0.2 s, median of PEERS_SAMPLES (7)).
//!
//!     PLUMB_NUM_THREADS=2 cargo run --release -p plumb-cpu --example bench_ops [filter]

#[path = "../benches/cases.rs"]
mod cases;

use std::time::Instant;

fn main() -> plumb_core::Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let samples: usize = std::env::var("PEERS_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let suffix = std::env::var("PEERS_OP_SUFFIX").unwrap_or_default();
    let d = cases::device()?;
    let threads = d
        .info()
        .features
        .iter()
        .find_map(|f| f.strip_prefix("threads="))
        .unwrap_or("?")
        .to_string();
    for case in cases::all(&d)? {
        let label = format!("{} {} {}", case.op, case.dtype, case.shape);
        if !label.contains(&filter) {
            continue;
        }
        (case.run)()?;
        let t = Instant::now();
        (case.run)()?;
        let one = t.elapsed().as_secs_f64().max(1e-9);
        let reps = ((0.2 / one).ceil() as usize).clamp(1, 100_000);
        let mut per = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            for _ in 0..reps {
                (case.run)()?;
            }
            per.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        per.sort_by(f64::total_cmp);
        let med = per[per.len() / 2];
        println!(
            "RESULT framework=plumb op={}{suffix} dtype={} shape={} median_ms={:.4} value={:.2} unit={} reps={reps} samples={samples} threads={threads}",
            case.op,
            case.dtype,
            case.shape,
            med * 1e3,
            case.work / med / 1e9,
            case.unit
        );
    }
    Ok(())
}
