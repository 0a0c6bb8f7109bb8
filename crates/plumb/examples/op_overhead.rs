//! Host cost of one op: many tiny adds (4 elements) on one device, reported as µs per op.
//! `cargo run --release -p plumb --example op_overhead -- [DEVICE] [OPS]` (default cpu, 200000).

use plumb::{DType, Result, Tensor};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dev = plumb::device(args.first().map_or("cpu", |s| s.as_str()))?;
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let a = Tensor::from_f64(&[1.0, 2.0, 3.0, 4.0], DType::F32, [4], &dev)?;
    let mut x = a.clone();
    let t = Instant::now();
    dev.scope(|| -> Result<()> {
        for _ in 0..n {
            x = x.add(&a)?;
        }
        Ok(())
    })?;
    dev.backend().synchronize()?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}: {:.2} µs per op over {n} adds",
        dev.id(),
        secs * 1e6 / n as f64
    );
    Ok(())
}
