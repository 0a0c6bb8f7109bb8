//! The benchmark cases shared by the criterion bench (`benches/ops.rs`) and the RESULT-line
//! printer (`examples/bench_ops.rs`): each case builds its inputs once and returns a closure
//! that runs the op (and waits for it), plus the work it does per call.
#![allow(dead_code)]

use plumb_core::{quant, DType, Device, Result, Tensor};
use std::sync::Arc;

pub struct Case {
    /// peers' op name (matmul, softmax_lastdim, …)
    pub op: &'static str,
    pub dtype: &'static str,
    pub shape: String,
    /// work per call in `unit`'s numerator (FLOPs or bytes)
    pub work: f64,
    pub unit: &'static str,
    pub run: Box<dyn Fn() -> Result<Tensor>>,
}

pub fn device() -> Result<Device> {
    Device::new(Arc::new(plumb_cpu::CpuBackend::new()))
}

fn matmul(d: &Device, n: usize, dt: DType) -> Result<Case> {
    let a = Tensor::randn(0.0, 1.0, [n, n], dt, 1, d)?;
    let b = Tensor::randn(0.0, 1.0, [n, n], dt, 2, d)?;
    Ok(Case {
        op: "matmul",
        dtype: dt.name(),
        shape: n.to_string(),
        work: 2.0 * (n as f64).powi(3),
        unit: "GFLOP/s",
        run: Box::new(move || a.matmul(&b)),
    })
}

/// x [1, k] × w [n, k]ᵀ with w quantized: GB/s of weight bytes streamed.
fn qmatvec(d: &Device, dt: DType, n: usize, k: usize) -> Result<Case> {
    let mut rng = plumb_core::rng::SplitMix64::new(7);
    let w: Vec<f32> = (0..n * k).map(|_| rng.next_f64() as f32 - 0.5).collect();
    // in the layout the model loaders use (16 rows in the lanes where the CPU has AVX-512 VNNI)
    let wq = Tensor::from_bytes(&quant::quantize(dt, &w)?, dt, [n, k], d)?.packed_for_qmatmul()?;
    let x = Tensor::randn(0.0, 1.0, [1, k], DType::F32, 3, d)?;
    Ok(Case {
        op: "qmatvec",
        dtype: dt.name(),
        shape: format!("1x{k}x{n}"),
        work: dt.storage_bytes(n * k) as f64,
        unit: "GB/s",
        run: Box::new(move || x.qmatmul(&wq)),
    })
}

/// x [m, k] × w [k, n] with few rows (a sentence through a linear layer at batch one), the
/// weight in the in-dim-major layout the model loaders keep, and in the device's own layout
/// where it has one (`packed_for_matmul`, as the loaders call it): GFLOP/s.
fn linear(d: &Device, dt: DType, m: usize, k: usize, n: usize) -> Result<Case> {
    let w = Tensor::randn(0.0, 1.0, [k, n], dt, 7, d)?
        .t()?
        .packed_for_matmul()?
        .t()?;
    let x = Tensor::randn(0.0, 1.0, [m, k], dt, 8, d)?;
    Ok(Case {
        op: "linear",
        dtype: dt.name(),
        shape: format!("{m}x{k}x{n}"),
        work: 2.0 * (m * k * n) as f64,
        unit: "GFLOP/s",
        run: Box::new(move || x.matmul(&w)),
    })
}

/// MiniLM's intermediate layer at batch 32 (about 1240 real tokens): x [m, k] · wᵀ + bias, then
/// exact gelu, fused as the model runs it (`linear_act`), the weight as the loaders keep it:
/// GFLOP/s of the product.
fn linear_gelu(d: &Device, m: usize, k: usize, n: usize) -> Result<Case> {
    let dt = DType::F32;
    let w = Tensor::randn(0.0, 0.05, [k, n], dt, 9, d)?
        .t()?
        .packed_for_matmul()?;
    let b = Tensor::randn(0.0, 1.0, [n], dt, 10, d)?;
    let x = Tensor::randn(0.0, 1.0, [m, k], dt, 11, d)?;
    Ok(Case {
        op: "linear_gelu",
        dtype: dt.name(),
        shape: format!("{m}x{k}x{n}"),
        work: 2.0 * (m * k * n) as f64,
        unit: "GFLOP/s",
        run: Box::new(move || x.linear_act(&w, Some(&b), plumb_core::UnaryOp::Gelu)),
    })
}

/// x [1, k] × w [k, n] with float weights in the layout the model loaders keep (in-dim-major,
/// then `packed_for_matmul`) (decoding): GB/s of weight bytes streamed.
fn matvec(d: &Device, dt: DType, n: usize, k: usize) -> Result<Case> {
    let w = Tensor::randn(0.0, 1.0, [k, n], dt, 5, d)?
        .t()?
        .packed_for_matmul()?
        .t()?;
    let x = Tensor::randn(0.0, 1.0, [1, k], dt, 6, d)?;
    Ok(Case {
        op: "matvec",
        dtype: dt.name(),
        shape: format!("1x{k}x{n}"),
        work: dt.storage_bytes(n * k) as f64,
        unit: "GB/s",
        run: Box::new(move || x.matmul(&w)),
    })
}

/// One decoded token's attention in a SmolLM2-135M layer: 9 query heads of 64 over 3 key/value
/// heads, after `t` cached keys (causal, the last row): GFLOP/s of q·k and p·v.
fn attention_decode(d: &Device, t: usize) -> Result<Case> {
    let (h, hkv, hd) = (9, 3, 64);
    let q = Tensor::randn(0.0, 1.0, [1, h, 1, hd], DType::F32, 12, d)?;
    let k = Tensor::randn(0.0, 1.0, [1, hkv, t, hd], DType::F32, 13, d)?;
    let v = Tensor::randn(0.0, 1.0, [1, hkv, t, hd], DType::F32, 14, d)?;
    Ok(Case {
        op: "attention_decode",
        dtype: "f32",
        shape: format!("{h}x{hkv}x{t}x{hd}"),
        work: (4 * h * t * hd) as f64,
        unit: "GFLOP/s",
        run: Box::new(move || Tensor::attention(&q, &k, &v, None, true, None)),
    })
}

/// One decoded token's attention in all 30 layers of SmolLM2-135M after `t` cached positions,
/// each layer its own cache (7.4 MB per layer at 1600 f32 positions, so they come from memory
/// as in the model): GB/s of cached keys and values read, the cache in `kv` (f32, or f16 / bf16
/// under f32 queries).
fn attention_decode_cache(d: &Device, t: usize, kv: DType) -> Result<Case> {
    let (layers, h, hkv, hd) = (30, 9, 3, 64);
    let q = Tensor::randn(0.0, 1.0, [1, h, 1, hd], DType::F32, 12, d)?;
    let mut caches = Vec::new();
    for l in 0..layers as u64 {
        let k = Tensor::randn(0.0, 1.0, [1, hkv, t, hd], DType::F32, 13 + 2 * l, d)?;
        let v = Tensor::randn(0.0, 1.0, [1, hkv, t, hd], DType::F32, 14 + 2 * l, d)?;
        caches.push((k.to_dtype(kv)?, v.to_dtype(kv)?));
    }
    Ok(Case {
        op: "attention_decode_cache",
        dtype: kv.name(),
        shape: format!("{layers}x{h}x{hkv}x{t}x{hd}"),
        work: kv.storage_bytes(2 * layers * hkv * t * hd) as f64,
        unit: "GB/s",
        run: Box::new(move || {
            let mut last = None;
            for (k, v) in &caches {
                last = Some(Tensor::attention(&q, k, v, None, false, None)?);
            }
            last.ok_or_else(|| plumb_core::Error::invalid("bench", "no layers"))
        }),
    })
}

fn rowwise(d: &Device, op: &'static str) -> Result<Case> {
    let (r, c) = (4096, 4096);
    let x = Tensor::randn(0.0, 1.0, [r, c], DType::F32, 4, d)?;
    let w = Tensor::ones([c], DType::F32, d)?;
    let b = Tensor::zeros([c], DType::F32, d)?;
    let run: Box<dyn Fn() -> Result<Tensor>> = if op == "softmax_lastdim" {
        Box::new(move || x.softmax(-1))
    } else {
        Box::new(move || x.layer_norm(Some(&w), Some(&b), 1e-5))
    };
    Ok(Case {
        op,
        dtype: "f32",
        shape: format!("{r}x{c}"),
        work: (2 * 4 * r * c) as f64, // read + write, as the peers count it
        unit: "GB/s",
        run,
    })
}

/// Every case, in table order.
pub fn all(d: &Device) -> Result<Vec<Case>> {
    let mut v = Vec::new();
    for n in [256, 512, 1024, 2048] {
        v.push(matmul(d, n, DType::F32)?);
    }
    v.push(matmul(d, 1024, DType::F16)?);
    v.push(matmul(d, 1024, DType::BF16)?);
    v.push(qmatvec(d, DType::Q4_1, 49152, 576)?);
    v.push(qmatvec(d, DType::Q8_0, 49152, 576)?);
    for dt in [DType::F32, DType::F16, DType::BF16] {
        v.push(matvec(d, dt, 49152, 576)?);
        v.push(matvec(d, dt, 1536, 576)?);
        v.push(linear(d, dt, 40, 384, 1536)?);
    }
    v.push(linear_gelu(d, 1240, 384, 1536)?);
    v.push(attention_decode(d, 144)?);
    for kv in [DType::F32, DType::F16] {
        v.push(attention_decode_cache(d, 1600, kv)?);
    }
    v.push(rowwise(d, "softmax_lastdim")?);
    v.push(rowwise(d, "layernorm_lastdim")?);
    Ok(v)
}
