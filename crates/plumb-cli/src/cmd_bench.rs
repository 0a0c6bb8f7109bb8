//! `plumb bench`: op throughput per device and dtype. Prints a table and `RESULT framework=plumb …`
//! lines in the format of the peer benchmarks (/work/shared/peers), so one table can hold both.
//!
//! Method (as the peers'): one warm-up call, inner repetitions so one sample lasts at least
//! `PLUMB_BENCH_MIN_SAMPLE_S` (default 0.2 s), `PLUMB_BENCH_SAMPLES` samples (default 7), the
//! median per call. GPU work is synchronized after every call.

use crate::common::GlobalOpts;
use clap::Args;
use plumb::{DType, Device, Result, Tensor};
use serde::Serialize;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// device (cpu, gpu:N, auto, or `all` for every device); default auto
    #[arg(long)]
    pub device: Option<String>,
    /// print the results as JSON
    #[arg(long)]
    pub json: bool,
    /// ops to run: matmul, qmatmul, softmax, layernorm, add (default: all)
    #[arg(long, value_delimiter = ',')]
    pub op: Vec<String>,
    /// smaller shapes (256–512 matmuls, 1024² rows) for a fast look
    #[arg(long)]
    pub quick: bool,
    /// matmul sizes to run in every float dtype (f32, f16, bf16) instead of the defaults,
    /// e.g. `--sizes 1024,2048,4096` on a GPU
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
}

#[derive(Serialize, Debug)]
pub struct BenchResult {
    pub device: String,
    pub op: String,
    pub dtype: String,
    pub shape: String,
    pub median_ms: f64,
    pub value: f64,
    pub unit: String,
    pub reps: usize,
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Median seconds per call and the inner repetitions used.
fn bench(dev: &Device, f: &dyn Fn() -> Result<Tensor>) -> Result<(f64, usize)> {
    let samples = env_num("PLUMB_BENCH_SAMPLES", 7.0).max(1.0) as usize;
    let min_s = env_num("PLUMB_BENCH_MIN_SAMPLE_S", 0.2);
    let call = || -> Result<()> {
        let out = f()?;
        dev.backend().synchronize()?;
        drop(out);
        Ok(())
    };
    call()?;
    let t = Instant::now();
    call()?;
    let one = t.elapsed().as_secs_f64().max(1e-9);
    let reps = ((min_s / one).ceil() as usize).clamp(1, 100_000);
    let mut per = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        for _ in 0..reps {
            call()?;
        }
        per.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    per.sort_by(|a, b| a.total_cmp(b));
    Ok((per[per.len() / 2], reps))
}

/// One timed call, built on a device.
type Call = Box<dyn Fn() -> Result<Tensor>>;
/// Builds the call on a device (inputs allocated there).
type Make = Box<dyn Fn(&Device) -> Result<Call>>;

struct Case {
    op: &'static str,
    dtype: DType,
    shape: String,
    /// work per call: flops (GFLOP/s) or bytes (GB/s)
    work: f64,
    unit: &'static str,
    make: Make,
}

fn matmul_case(n: usize, dt: DType) -> Case {
    Case {
        op: "matmul",
        dtype: dt,
        shape: n.to_string(),
        work: 2.0 * (n as f64).powi(3),
        unit: "GFLOP/s",
        make: Box::new(move |dev| {
            let a = Tensor::rand(-1.0, 1.0, [n, n], dt, 1, dev)?;
            let b = Tensor::rand(-1.0, 1.0, [n, n], dt, 2, dev)?;
            Ok(Box::new(move || a.matmul(&b)))
        }),
    }
}

/// `rows` f32 activation rows × a quantized [n, k] weight: 1 row is decoding's matrix-vector
/// product, many rows a prompt's.
fn qmatmul_case(rows: usize, k: usize, n: usize, wdt: DType) -> Case {
    Case {
        op: if rows == 1 { "qmatvec" } else { "qmatmul" },
        dtype: wdt,
        shape: if rows == 1 {
            format!("{k}x{n}")
        } else {
            format!("{rows}x{k}x{n}")
        },
        work: 2.0 * (rows * k * n) as f64,
        unit: "GFLOP/s",
        make: Box::new(move |dev| {
            // in the layout the model loaders use
            let w = Tensor::rand(-1.0, 1.0, [n, k], wdt, 3, dev)?.packed_for_qmatmul()?;
            let x = Tensor::rand(-1.0, 1.0, [rows, k], DType::F32, 4, dev)?;
            Ok(Box::new(move || x.qmatmul(&w)))
        }),
    }
}

fn rows_case(op: &'static str, r: usize, c: usize) -> Case {
    Case {
        op,
        dtype: DType::F32,
        shape: format!("{r}x{c}"),
        // read + write, as the peers count it; add moves three tensors
        work: if op == "add" { 3.0 } else { 2.0 } * 4.0 * (r * c) as f64,
        unit: "GB/s",
        make: Box::new(move |dev| {
            let x = Tensor::rand(-2.0, 2.0, [r, c], DType::F32, 5, dev)?;
            let y = Tensor::rand(-2.0, 2.0, [r, c], DType::F32, 6, dev)?;
            let w = Tensor::ones([c], DType::F32, dev)?;
            let b = Tensor::zeros([c], DType::F32, dev)?;
            Ok(match op {
                "softmax_lastdim" => Box::new(move || x.softmax(-1)),
                "layernorm_lastdim" => Box::new(move || x.layer_norm(Some(&w), Some(&b), 1e-5)),
                _ => Box::new(move || x.add(&y)),
            })
        }),
    }
}

fn cases(args: &BenchArgs) -> Vec<Case> {
    let want = |name: &str| args.op.is_empty() || args.op.iter().any(|o| o == name);
    let mut v = Vec::new();
    if want("matmul") && !args.sizes.is_empty() {
        for dt in [DType::F32, DType::F16, DType::BF16] {
            for &n in &args.sizes {
                v.push(matmul_case(n, dt));
            }
        }
    } else if want("matmul") {
        let sizes: &[usize] = if args.quick {
            &[256, 512]
        } else {
            &[256, 512, 1024, 2048]
        };
        for &n in sizes {
            v.push(matmul_case(n, DType::F32));
        }
        let n = if args.quick { 512 } else { 1024 };
        v.push(matmul_case(n, DType::F16));
        v.push(matmul_case(n, DType::BF16));
    }
    if want("qmatmul") {
        let n = if args.quick { 4096 } else { 49152 };
        v.push(qmatmul_case(1, 576, n, DType::Q4_1));
        v.push(qmatmul_case(1, 576, n, DType::Q8_0));
        // a 256-token prompt through SmolLM2's MLP up-projection
        v.push(qmatmul_case(256, 576, 1536, DType::Q4_1));
    }
    let r = if args.quick { 1024 } else { 4096 };
    if want("softmax") {
        v.push(rows_case("softmax_lastdim", r, 4096));
    }
    if want("layernorm") {
        v.push(rows_case("layernorm_lastdim", r, 4096));
    }
    if want("add") {
        v.push(rows_case("add", r, 4096));
    }
    v
}

pub fn run(args: BenchArgs, global: &GlobalOpts) -> Result<()> {
    let devices: Vec<Device> = match args.device.as_deref() {
        Some("all") => plumb::devices()?
            .into_iter()
            .filter(|d| d.holds_data())
            .collect(),
        Some(spec) => vec![plumb::device(spec)?],
        None => vec![plumb::auto()?],
    };
    // meta runs every op in no time on no data: its rates would be noise dressed as results
    if let Some(d) = devices.iter().find(|d| !d.holds_data()) {
        return Err(plumb::Error::invalid(
            "bench",
            format!(
                "{} holds shapes and dtypes only, so there is nothing to time; bench a device \
                 that computes (--device all skips it)",
                d.id()
            ),
        ));
    }
    let known = ["matmul", "qmatmul", "softmax", "layernorm", "add"];
    if let Some(bad) = args.op.iter().find(|o| !known.contains(&o.as_str())) {
        return Err(plumb::Error::invalid(
            "bench",
            format!("unknown op '{bad}' (one of: {})", known.join(", ")),
        ));
    }
    let mut results = Vec::new();
    for dev in &devices {
        let dev = dev.with_policy(global.policy);
        for case in cases(&args) {
            let outcome = (case.make)(&dev).and_then(|f| bench(&dev, f.as_ref()));
            match outcome {
                Ok((secs, reps)) => {
                    let r = BenchResult {
                        device: dev.id().to_string(),
                        op: case.op.into(),
                        dtype: case.dtype.to_string(),
                        shape: case.shape.clone(),
                        median_ms: secs * 1e3,
                        value: case.work / secs / 1e9,
                        unit: case.unit.into(),
                        reps,
                    };
                    if !args.json {
                        println!(
                            "RESULT framework=plumb op={} dtype={} shape={} median_ms={:.4} value={:.2} unit={} reps={} device={}",
                            r.op, r.dtype, r.shape, r.median_ms, r.value, r.unit, r.reps, r.device
                        );
                    }
                    results.push(r);
                }
                Err(e) => eprintln!(
                    "bench: {} {} {} {}: {e}",
                    dev.id(),
                    case.op,
                    case.dtype,
                    case.shape
                ),
            }
        }
        if global.explain {
            eprint!("{}: {}", dev.id(), dev.report());
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_else(|e| e.to_string())
        );
    }
    Ok(())
}
