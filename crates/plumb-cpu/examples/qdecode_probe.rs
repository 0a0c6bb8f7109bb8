//! Probe: the quantized matrix-vector products of one decoded token of a SmolLM2-135M-shaped
//! model (30 layers of q/k/v stacked, o, gate/up stacked and down in q4_1, then a q8_0 head of
//! 49152 rows), random weights packed as the loaders pack them, so every token streams ~96 MB
//! from memory as decoding does. Prints the time per token of the products alone and the
//! weight bytes streamed per second: the ceiling the kernels set for decode; then, for scale,
//! a plain read of 512 MiB split into one contiguous half per thread (the memory's streaming
//! rate on this machine at this moment, which on a shared VM moves by a third within minutes).
//!
//!     PLUMB_NUM_THREADS=2 cargo run --release -p plumb-cpu --example qdecode_probe

use plumb_core::{quant, DType, Device, Result, Tensor};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<()> {
    let d = Device::new(Arc::new(plumb_cpu::CpuBackend::new()))?;
    let mut rng = plumb_core::rng::SplitMix64::new(7);
    let mut mat = |dt: DType, n: usize, k: usize| -> Result<Tensor> {
        let w: Vec<f32> = (0..n * k).map(|_| rng.next_f64() as f32 - 0.5).collect();
        Tensor::from_bytes(&quant::quantize(dt, &w)?, dt, [n, k], &d)?.packed_for_qmatmul()
    };
    let (h, ff, kv, layers) = (576, 1536, 192, 30);
    let mut ws = Vec::new();
    for _ in 0..layers {
        ws.push(mat(DType::Q4_1, h + 2 * kv, h)?);
        ws.push(mat(DType::Q4_1, h, h)?);
        ws.push(mat(DType::Q4_1, 2 * ff, h)?);
        ws.push(mat(DType::Q4_1, h, ff)?);
    }
    ws.push(mat(DType::Q8_0, 49152, h)?);
    let bytes: usize = ws
        .iter()
        .map(|w| w.dtype().storage_bytes(w.shape().iter().product()))
        .sum();
    let xs = [
        Tensor::randn(0.0, 1.0, [1, h], DType::F32, 3, &d)?,
        Tensor::randn(0.0, 1.0, [1, ff], DType::F32, 4, &d)?,
    ];
    let token = || -> Result<()> {
        for w in &ws {
            let x = &xs[usize::from(w.shape()[1] == ff)];
            x.qmatmul(w)?;
        }
        Ok(())
    };
    token()?;
    let mut per = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..20 {
            token()?;
        }
        per.push(t.elapsed().as_secs_f64() / 20.0);
    }
    per.sort_by(f64::total_cmp);
    let med = per[per.len() / 2];
    println!(
        "qdecode_probe: {:.1} MB per token, median {:.3} ms per token ({:.1} GB/s; min {:.3} max {:.3} ms)",
        bytes as f64 / 1e6,
        med * 1e3,
        bytes as f64 / med / 1e9,
        per[0] * 1e3,
        per[per.len() - 1] * 1e3
    );
    stream();
    Ok(())
}

/// GB/s of a plain sum over 512 MiB, one contiguous part per thread (the median of 5).
fn stream() {
    let words = 64 << 20;
    let data: Vec<u64> = (0..words as u64).collect();
    let threads = plumb_cpu::par::threads();
    let part = words / threads;
    let sums: Vec<std::sync::atomic::AtomicU64> =
        (0..threads).map(|_| Default::default()).collect();
    let mut per = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        plumb_cpu::par::for_each(threads, |i| {
            let s = data[i * part..(i + 1) * part]
                .iter()
                .fold(0u64, |a, &x| a.wrapping_add(x));
            sums[i].store(s, std::sync::atomic::Ordering::Relaxed);
        });
        per.push(t.elapsed().as_secs_f64());
    }
    per.sort_by(f64::total_cmp);
    println!(
        "qdecode_probe: plain read of 512 MiB, {threads} threads: {:.1} GB/s",
        (words * 8) as f64 / per[2] / 1e9
    );
}
