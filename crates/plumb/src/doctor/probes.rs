//! Probe inputs per (op family, dtype), run through the real Tensor API on a device, compared with
//! an f64 oracle computed here on the host from the same inputs rounded to the dtype.
//!
//! Error metric: for every output element, `|actual − expected| / max(|expected|, 1)` (relative,
//! with 1 as the absolute floor near zero, as [`DType::tolerance`] documents); a NaN or infinity
//! where the oracle has a finite value (or the reverse) is an infinite error. The probe's error is
//! the worst element over all its ops.
//!
//! Tolerance per family (× `DType::tolerance()` of the column's dtype): elementwise, index and
//! cast ×1 (one rounding of the output); reduce, softmax, norm and matmul ×2 (f32 accumulation
//! over a row of at most 64 elements, then one rounding). Integer dtypes must be exact.
//! Quantized columns compare with the *exactly dequantized* weights, so they measure the kernel,
//! not the weights' quantization; the bound is q8_0's tolerance ×4 for every weight dtype,
//! because kernels may quantize the activations to q8_0 blocks as llama.cpp does (each
//! activation off by up to 1/254 of its block's maximum, summed over k = 64 products).

use plumb_core::{DType, Device, Error, OpFamily, Result, Tensor};
use std::time::{Duration, Instant};

/// What one probe measured.
pub(crate) struct Measured {
    /// worst normalized error over every op of the probe (may be infinite)
    pub err: f64,
}

/// Tolerance multiplier of a family (see the module docs).
pub(crate) fn tolerance(family: OpFamily, dtype: DType) -> f64 {
    if family == OpFamily::QMatmul {
        return DType::Q8_0.tolerance() * 4.0;
    }
    dtype.tolerance() * tolerance_scale(family)
}

fn tolerance_scale(family: OpFamily) -> f64 {
    match family {
        OpFamily::Reduce | OpFamily::Softmax | OpFamily::Norm | OpFamily::Matmul => 2.0,
        _ => 1.0,
    }
}

/// Is the (family, dtype) cell meaningful at all? `Err(reason)` when not.
pub(crate) fn applicable(family: OpFamily, dtype: DType) -> std::result::Result<(), &'static str> {
    match (family, dtype) {
        (OpFamily::QMatmul, d) if d.is_quantized() => Ok(()),
        (_, d) if d.is_quantized() => Err("quantized dtypes are weight storage for qmatmul"),
        (OpFamily::QMatmul, _) => Err("qmatmul takes quantized weights"),
        (OpFamily::Softmax | OpFamily::Norm | OpFamily::Matmul, d) if !d.is_float() => {
            Err("defined for floating dtypes")
        }
        _ => Ok(()),
    }
}

/// Round `v` to what `dtype` stores (round-to-nearest-even; integers truncate).
pub(crate) fn round_to(dtype: DType, v: f64) -> f64 {
    match dtype {
        DType::F16 => half::f16::from_f64(v).to_f64(),
        DType::BF16 => half::bf16::from_f64(v).to_f64(),
        DType::F32 => v as f32 as f64,
        DType::I32 | DType::I64 | DType::U8 => v.trunc(),
        DType::Bool => (v != 0.0) as u8 as f64,
        _ => v,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random values in [lo, hi) rounded to `dtype` (integers: whole numbers in the range).
fn values(n: usize, lo: f64, hi: f64, dtype: DType, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| {
            let v = lo + (hi - lo) * r.next();
            if dtype.is_float() {
                round_to(dtype, v)
            } else {
                v.floor()
            }
        })
        .collect()
}

fn input(dev: &Device, dtype: DType, shape: &[usize], v: &[f64]) -> Result<Tensor> {
    Tensor::from_f64(v, dtype, shape, dev)
}

/// Worst normalized error of `actual` against `expected`.
pub(crate) fn worst(actual: &[f64], expected: &[f64]) -> f64 {
    if actual.len() != expected.len() {
        return f64::INFINITY;
    }
    let mut w = 0f64;
    for (&a, &e) in actual.iter().zip(expected) {
        let err = if e.is_nan() || a.is_nan() {
            if e.is_nan() && a.is_nan() {
                0.0
            } else {
                f64::INFINITY
            }
        } else if e.is_infinite() || a.is_infinite() {
            if a == e {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (a - e).abs() / e.abs().max(1.0)
        };
        w = w.max(err);
    }
    w
}

fn check(out: &Tensor, expected: &[f64], acc: &mut f64) -> Result<()> {
    *acc = acc.max(worst(&out.to_f64_vec()?, expected));
    Ok(())
}

fn map1(x: &[f64], f: impl Fn(f64) -> f64) -> Vec<f64> {
    x.iter().map(|&v| f(v)).collect()
}
fn map2(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

fn erf(x: f64) -> f64 {
    plumb_core::math::erf(x)
}

/// Run the accuracy probe of `family` in `dtype` on `dev`.
pub(crate) fn probe(dev: &Device, family: OpFamily, dtype: DType) -> Result<Measured> {
    let mut e = 0f64;
    match family {
        OpFamily::Elementwise => elementwise(dev, dtype, &mut e)?,
        OpFamily::Reduce => reduce(dev, dtype, &mut e)?,
        OpFamily::Softmax => softmax(dev, dtype, &mut e)?,
        OpFamily::Norm => norm(dev, dtype, &mut e)?,
        OpFamily::Matmul => matmul(dev, dtype, &mut e)?,
        OpFamily::Index => index(dev, dtype, &mut e)?,
        OpFamily::Cast => cast(dev, dtype, &mut e)?,
        OpFamily::QMatmul => qmatmul(dev, dtype, &mut e)?,
        other => {
            return Err(Error::invalid(
                "doctor",
                format!("no probe for the {other} family"),
            ))
        }
    }
    Ok(Measured { err: e })
}

fn elementwise(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let n = 256;
    let shape = [n];
    if !dt.is_float() {
        let a = values(n, -100.0, 100.0, dt, 1);
        let b = values(n, -100.0, 100.0, dt, 2);
        let (ta, tb) = (input(dev, dt, &shape, &a)?, input(dev, dt, &shape, &b)?);
        check(&ta.add(&tb)?, &map2(&a, &b, |x, y| x + y), e)?;
        check(&ta.mul(&tb)?, &map2(&a, &b, |x, y| x * y), e)?;
        check(&ta.maximum(&tb)?, &map2(&a, &b, f64::max), e)?;
        check(&ta.neg()?, &map1(&a, |x| -x), e)?;
        let lt = ta.lt(&tb)?.to_dtype(dt)?;
        check(&lt, &map2(&a, &b, |x, y| (x < y) as u8 as f64), e)?;
        return Ok(());
    }
    let a = values(n, -2.0, 2.0, dt, 1);
    let b = values(n, -2.0, 2.0, dt, 2);
    let pos = values(n, 0.25, 4.0, dt, 3);
    let (ta, tb, tp) = (
        input(dev, dt, &shape, &a)?,
        input(dev, dt, &shape, &b)?,
        input(dev, dt, &shape, &pos)?,
    );
    check(&ta.add(&tb)?, &map2(&a, &b, |x, y| x + y), e)?;
    check(&ta.mul(&tb)?, &map2(&a, &b, |x, y| x * y), e)?;
    check(&ta.div(&tp)?, &map2(&a, &pos, |x, y| x / y), e)?;
    check(&ta.exp()?, &map1(&a, f64::exp), e)?;
    check(&tp.log()?, &map1(&pos, f64::ln), e)?;
    check(&ta.tanh()?, &map1(&a, f64::tanh), e)?;
    check(&ta.silu()?, &map1(&a, |x| x / (1.0 + (-x).exp())), e)?;
    let gelu = |x: f64| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2));
    check(&ta.gelu()?, &map1(&a, gelu), e)?;
    let w = ta.gt(&tb)?.where_cond(&ta, &tb)?;
    check(&w, &map2(&a, &b, |x, y| if x > y { x } else { y }), e)
}

fn reduce(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let (r, c) = (8, 64);
    let x = if dt.is_float() {
        values(r * c, -2.0, 2.0, dt, 4)
    } else {
        values(r * c, -1000.0, 1000.0, dt, 4)
    };
    let t = input(dev, dt, &[r, c], &x)?;
    let rows: Vec<&[f64]> = x.chunks(c).collect();
    let sums: Vec<f64> = rows.iter().map(|row| row.iter().sum()).collect();
    check(&t.sum(-1, false)?, &sums, e)?;
    let maxs: Vec<f64> = rows
        .iter()
        .map(|row| row.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    check(&t.max(-1, false)?, &maxs, e)?;
    let arg: Vec<f64> = rows
        .iter()
        .zip(&maxs)
        .map(|(row, m)| row.iter().position(|v| v == m).unwrap_or(0) as f64)
        .collect();
    check(&t.argmax(-1, false)?, &arg, e)?;
    let col: Vec<f64> = (0..c).map(|j| (0..r).map(|i| x[i * c + j]).sum()).collect();
    check(&t.sum(0, false)?, &col, e)?;
    if dt.is_float() {
        let means: Vec<f64> = sums.iter().map(|s| s / c as f64).collect();
        check(&t.mean(-1, false)?, &means, e)?;
    }
    Ok(())
}

fn softmax_ref(row: &[f64], log: bool) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
    row.iter()
        .map(|v| {
            if log {
                v - m - s.ln()
            } else {
                (v - m).exp() / s
            }
        })
        .collect()
}

fn softmax(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let (r, c) = (8, 64);
    let x = values(r * c, -4.0, 4.0, dt, 5);
    let t = input(dev, dt, &[r, c], &x)?;
    let s: Vec<f64> = x
        .chunks(c)
        .flat_map(|row| softmax_ref(row, false))
        .collect();
    check(&t.softmax(-1)?, &s, e)?;
    let l: Vec<f64> = x.chunks(c).flat_map(|row| softmax_ref(row, true)).collect();
    check(&t.log_softmax(-1)?, &l, e)
}

fn norm(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let (r, c) = (8, 64);
    let x = values(r * c, -2.0, 2.0, dt, 6);
    let w = values(c, 0.5, 1.5, dt, 7);
    let b = values(c, -0.5, 0.5, dt, 8);
    let t = input(dev, dt, &[r, c], &x)?;
    let (tw, tb) = (input(dev, dt, &[c], &w)?, input(dev, dt, &[c], &b)?);
    let eps = 1e-5;
    let mut ln = Vec::new();
    let mut rms = Vec::new();
    for row in x.chunks(c) {
        let mean = row.iter().sum::<f64>() / c as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
        let ms = row.iter().map(|v| v * v).sum::<f64>() / c as f64;
        for j in 0..c {
            ln.push((row[j] - mean) / (var + eps).sqrt() * w[j] + b[j]);
            rms.push(row[j] / (ms + eps).sqrt() * w[j]);
        }
    }
    check(&t.layer_norm(Some(&tw), Some(&tb), eps)?, &ln, e)?;
    check(&t.rms_norm(Some(&tw), eps)?, &rms, e)
}

fn matmul_ref(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(bi * m + i) * n + j] =
                    (0..k).map(|p| a[(bi * m + i) * k + p] * b[p * n + j]).sum();
            }
        }
    }
    out
}

fn matmul(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let (batch, m, k, n) = (2, 16, 64, 24);
    let a = values(batch * m * k, -1.0, 1.0, dt, 9);
    let b = values(k * n, -1.0, 1.0, dt, 10);
    let ta = input(dev, dt, &[batch, m, k], &a)?;
    let tb = input(dev, dt, &[k, n], &b)?;
    check(&ta.matmul(&tb)?, &matmul_ref(&a, &b, batch, m, k, n), e)?;
    // a transposed view of b: (bᵀ)ᵀ
    let bt: Vec<f64> = (0..n)
        .flat_map(|j| (0..k).map(move |p| (p, j)))
        .map(|(p, j)| b[p * n + j])
        .collect();
    let tbt = input(dev, dt, &[n, k], &bt)?.t()?;
    check(&ta.matmul(&tbt)?, &matmul_ref(&a, &b, batch, m, k, n), e)
}

fn index(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let (rows, cols) = (32, 16);
    let x = if dt.is_float() {
        values(rows * cols, -2.0, 2.0, dt, 11)
    } else {
        values(rows * cols, -1000.0, 1000.0, dt, 11)
    };
    let t = input(dev, dt, &[rows, cols], &x)?;
    let ids = [3i32, 0, 31, 7, 7, 12];
    let tid = Tensor::from_slice(&ids, [ids.len()], dev)?;
    let exp: Vec<f64> = ids
        .iter()
        .flat_map(|&i| x[i as usize * cols..(i as usize + 1) * cols].to_vec())
        .collect();
    check(&t.index_select(&tid, 0)?, &exp, e)?;
    let g: Vec<i64> = (0..rows * 4).map(|i| ((i * 7) % cols) as i64).collect();
    let tg = Tensor::from_slice(&g, [rows, 4], dev)?;
    let exp: Vec<f64> = (0..rows * 4)
        .map(|i| x[(i / 4) * cols + g[i] as usize])
        .collect();
    check(&t.gather(&tg, 1)?, &exp, e)
}

fn cast(dev: &Device, dt: DType, e: &mut f64) -> Result<()> {
    let n = 128;
    // the other end of each cast: f32, or i32 for the f32 column
    let other = if dt == DType::F32 {
        DType::I32
    } else {
        DType::F32
    };
    let x = if dt.is_float() {
        values(n, -70000.0, 70000.0, DType::F64, 12)
            .into_iter()
            .map(|v| round_to(dt, v / 1000.0))
            .collect::<Vec<_>>()
    } else {
        values(n, -1000.0, 1000.0, dt, 12)
    };
    let t = input(dev, dt, &[n], &x)?;
    check(&t.to_dtype(other)?, &map1(&x, |v| round_to(other, v)), e)?;
    let y = values(n, -100.0, 100.0, DType::F64, 13);
    let y: Vec<f64> = y.iter().map(|&v| round_to(other, v)).collect();
    let s = input(dev, other, &[n], &y)?;
    check(&s.to_dtype(dt)?, &map1(&y, |v| round_to(dt, v)), e)
}

fn qmatmul(dev: &Device, wdt: DType, e: &mut f64) -> Result<()> {
    let (m, k, n) = (4, 64, 48);
    let x = values(m * k, -1.0, 1.0, DType::F32, 14);
    let wv = values(n * k, -1.0, 1.0, DType::F32, 15);
    // in the layout the model loaders use (the CPU packs 16 rows in the vector lanes)
    let w = Tensor::from_f64(&wv, wdt, [n, k], dev)?.packed_for_qmatmul()?;
    // the oracle uses the weights exactly as stored (decoded on the host)
    let wq = plumb_core::convert::bytes_to_f64(wdt, &w.to_bytes()?, n * k)?;
    let tx = input(dev, DType::F32, &[m, k], &x)?;
    let exp: Vec<f64> = (0..m * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            (0..k).map(|p| x[r * k + p] * wq[c * k + p]).sum()
        })
        .collect();
    check(&tx.qmatmul(&w)?, &exp, e)
}

/// Best time of `f` (after one warm-up run), repeated until `budget` is spent (at least 2 runs).
fn best_time(dev: &Device, budget: Duration, f: &dyn Fn() -> Result<Tensor>) -> Result<f64> {
    f()?;
    dev.backend().synchronize()?;
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 2 || (start.elapsed() < budget && runs < 10_000) {
        let t0 = Instant::now();
        let out = f()?;
        dev.backend().synchronize()?;
        best = best.min(t0.elapsed().as_secs_f64());
        drop(out);
        runs += 1;
    }
    Ok(best.max(1e-9))
}

/// A throughput measurement.
pub(crate) struct Rate {
    pub value: f64,
    pub unit: &'static str,
    pub shape: String,
}

/// Matmul GFLOP/s (square `n`), elementwise add GB/s (`n` elements, 3 tensors moved), or
/// qmatmul GFLOP/s (a [8, n] × [n, n]ᵀ product).
pub(crate) fn throughput(
    dev: &Device,
    family: OpFamily,
    dt: DType,
    n: usize,
    budget: Duration,
) -> Result<Option<Rate>> {
    match family {
        OpFamily::Matmul => {
            let a = Tensor::rand(-1.0, 1.0, [n, n], dt, 1, dev)?;
            let b = Tensor::rand(-1.0, 1.0, [n, n], dt, 2, dev)?;
            let t = best_time(dev, budget, &|| a.matmul(&b))?;
            Ok(Some(Rate {
                value: 2.0 * (n as f64).powi(3) / t / 1e9,
                unit: "GFLOP/s",
                shape: format!("{n}x{n}x{n}"),
            }))
        }
        OpFamily::QMatmul => {
            let w = Tensor::rand(-1.0, 1.0, [n, n], dt, 3, dev)?.packed_for_qmatmul()?;
            let x = Tensor::rand(-1.0, 1.0, [8, n], DType::F32, 4, dev)?;
            let t = best_time(dev, budget, &|| x.qmatmul(&w))?;
            Ok(Some(Rate {
                value: 2.0 * 8.0 * (n as f64).powi(2) / t / 1e9,
                unit: "GFLOP/s",
                shape: format!("8x{n} · {n}x{n}ᵀ"),
            }))
        }
        OpFamily::Elementwise => {
            let elems = n * n;
            let (lo, hi) = if dt.is_float() {
                (-1.0, 1.0)
            } else {
                (-100.0, 100.0)
            };
            let a = Tensor::rand(lo, hi, [elems], dt, 5, dev)?;
            let b = Tensor::rand(lo, hi, [elems], dt, 6, dev)?;
            let t = best_time(dev, budget, &|| a.add(&b))?;
            let bytes = 3.0 * dt.storage_bytes(elems) as f64;
            Ok(Some(Rate {
                value: bytes / t / 1e9,
                unit: "GB/s",
                shape: format!("add {elems}"),
            }))
        }
        _ => Ok(None),
    }
}
