//! Matmul throughput on gpu:0 (the first adapter in preference order).
//!
//! cargo run --release -p plumb-wgpu --example bench_matmul -- [SIZE | f32:SIZE | f16:SIZE |
//!     bt:SIZE | q4_1:KxN | overhead]...
//!
//! `bt:SIZE` multiplies by the transpose of a row-major matrix (x * W^T, as linear layers do).
//!
//! With no arguments: f32 and f16 at 1024, 2048 and 4096, then a 576x49152 q4_1 matrix-vector
//! product (x [1, 576] f32 times w [49152, 576] q4_1). `overhead` times one tiny add (the
//! per-op cost of encoding a dispatch). PLUMB_WGPU_TRUSTED=1 compiles kernels without naga's
//! runtime bounds checks, to measure what they cost. Each case is warmed up, then timed over
//! enough iterations for about a second (at least 3), with the GPU synchronized at both ends.
//! Prints one `RESULT framework=plumb-wgpu ...` line per case.
use plumb_core::{DType, Device, OpFamily, Policy, Result, Tensor};
use std::sync::Arc;
use std::time::Instant;

fn time(d: &Device, mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    for _ in 0..2 {
        f()?;
    }
    d.backend().synchronize()?;
    let t0 = Instant::now();
    f()?;
    d.backend().synchronize()?;
    let one = t0.elapsed().as_secs_f64();
    let iters = ((1.0 / one.max(1e-6)) as usize).clamp(3, 200);
    let t0 = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    d.backend().synchronize()?;
    Ok(t0.elapsed().as_secs_f64() / iters as f64)
}

/// Largest |got - want| / sqrt(n) over 64 pseudo-random outputs of an m x n result.
fn spot_check(got: &[f64], want: impl Fn(usize, usize) -> f64, m: usize, n: usize) -> f64 {
    let mut r = plumb_core::rng::SplitMix64::new(7);
    let mut worst = 0f64;
    for _ in 0..64 {
        let i = (r.next_u64() % m as u64) as usize;
        let j = (r.next_u64() % n as u64) as usize;
        worst = worst.max((got[i * n + j] - want(i, j)).abs());
    }
    worst / (n as f64).sqrt()
}

fn square(d: &Device, dt: DType, n: usize, transposed_b: bool) -> Result<()> {
    if !d.supports(OpFamily::Matmul, dt).is_runnable() {
        println!(
            "skipped: matmul {dt} on {}: {}",
            d.id(),
            d.supports(OpFamily::Matmul, dt)
        );
        return Ok(());
    }
    let a = Tensor::rand(-1.0, 1.0, [n, n], dt, 1, d)?;
    let b = Tensor::rand(-1.0, 1.0, [n, n], dt, 2, d)?;
    // x * W^T with W row-major (the linear-layer layout)
    let b = if transposed_b { b.t()? } else { b };
    let s = time(d, || a.matmul(&b))?;
    let gflops = 2.0 * (n as f64).powi(3) / s / 1e9;
    let c = a.matmul(&b)?.to_f64_vec()?;
    let (av, bv) = (a.to_f64_vec()?, b.contiguous()?.to_f64_vec()?);
    let err = spot_check(
        &c,
        |i, j| (0..n).map(|p| av[i * n + p] * bv[p * n + j]).sum(),
        n,
        n,
    );
    println!(
        "RESULT framework=plumb-wgpu op={} dtype={dt} shape={n} value={gflops:.1} unit=GFLOP/s",
        if transposed_b { "matmul_bt" } else { "matmul" }
    );
    println!("  (spot check of 64 outputs against f64 on the host: max error {err:.2e} / sqrt(k))");
    Ok(())
}

fn qmatvec(d: &Device, qt: DType, k: usize, n: usize) -> Result<()> {
    let x = Tensor::rand(-1.0, 1.0, [1, k], DType::F32, 3, d)?;
    let w = Tensor::rand(-1.0, 1.0, [n, k], qt, 4, d)?;
    let s = time(d, || x.qmatmul(&w))?;
    let y = x.qmatmul(&w)?.to_f64_vec()?;
    let (xv, wv) = (x.to_f64_vec()?, w.to_f64_vec()?);
    let err = spot_check(&y, |_, j| (0..k).map(|p| xv[p] * wv[j * k + p]).sum(), 1, n);
    let gflops = 2.0 * (k * n) as f64 / s / 1e9;
    let gbs = qt.storage_bytes(k * n) as f64 / s / 1e9;
    println!("RESULT framework=plumb-wgpu op=qmatvec dtype={qt} shape={k}x{n} value={gflops:.1} unit=GFLOP/s");
    println!(
        "  ({:.1} us per call, {gbs:.1} GB/s of weights; spot check max error {err:.2e})",
        s * 1e6
    );
    Ok(())
}

fn main() -> Result<()> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    }
    let Some(b) = plumb_wgpu::discover(None)?.into_iter().next() else {
        println!("skipped: no adapter");
        return Ok(());
    };
    let d = Device::with_backend_policy(Arc::new(b), Policy::STRICT);
    let info = d.info();
    println!(
        "device {} {} ({}, {}) features {:?}",
        info.id, info.name, info.api, info.driver, info.features
    );
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = ["1024", "2048", "4096", "q4_1:576x49152"]
            .map(String::from)
            .to_vec();
    }
    for a in args {
        if let Some((kind, rest)) = a.split_once(':') {
            if let Some((k, n)) = rest.split_once('x') {
                let (Ok(k), Ok(n)) = (k.parse::<usize>(), n.parse::<usize>()) else {
                    println!("skipped: cannot parse {a}");
                    continue;
                };
                qmatvec(&d, kind.parse()?, k, n)?;
            } else if let Ok(n) = rest.parse::<usize>() {
                if kind == "bt" {
                    square(&d, DType::F32, n, true)?;
                    square(&d, DType::F16, n, true)?;
                } else {
                    square(&d, kind.parse()?, n, false)?;
                }
            }
        } else if a == "overhead" {
            let x = Tensor::rand(-1.0, 1.0, [256], DType::F32, 5, &d)?;
            let s = time(&d, || x.add(&x))?;
            println!(
                "RESULT framework=plumb-wgpu op=add dtype=f32 shape=256 value={:.1} unit=us",
                s * 1e6
            );
        } else if let Ok(n) = a.parse::<usize>() {
            square(&d, DType::F32, n, false)?;
            square(&d, DType::F16, n, false)?;
        } else {
            println!("skipped: cannot parse {a}");
        }
    }
    Ok(())
}
