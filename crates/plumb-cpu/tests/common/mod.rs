//! Shared helpers for the CPU backend's tests: the device, deterministic inputs, rounding of f64
//! values into a dtype (through plumb-core's host encoders, not the kernels) and comparison with a
//! per-dtype tolerance.
#![allow(dead_code)]

use plumb_core::{convert, DType, Device, Tensor};
use std::sync::Arc;

pub fn dev() -> Device {
    Device::new(Arc::new(plumb_cpu::CpuBackend::with_threads(2))).unwrap()
}

/// Deterministic values in [lo, hi).
pub fn vals(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut r = plumb_core::rng::SplitMix64::new(seed);
    (0..n).map(|_| lo + (hi - lo) * r.next_f64()).collect()
}

/// `v` as stored in `dt` (rounded / saturated by the host encoder), back in f64.
pub fn round(dt: DType, v: &[f64]) -> Vec<f64> {
    let b = convert::f64_to_bytes(dt, v).unwrap();
    convert::bytes_to_f64(dt, &b, v.len()).unwrap()
}

pub fn tensor(v: &[f64], dt: DType, shape: &[usize], d: &Device) -> Tensor {
    Tensor::from_f64(v, dt, shape, d).unwrap()
}

/// Row-major values of `t` in f64.
pub fn read(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec().unwrap()
}

/// Compare with relative tolerance `tol` (absolute floor `tol` near zero); NaN must match NaN,
/// infinities must match exactly.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * w.abs().max(1.0)
        };
        assert!(ok, "{what}: element {i}: got {g}, want {w} (tol {tol})");
    }
}

/// Tolerance for an op computed in `dt` (a few roundings of the dtype).
pub fn tol(dt: DType) -> f64 {
    match dt {
        DType::F64 => 1e-12,
        DType::F32 => 2e-6,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        _ => 0.0,
    }
}

/// Row-major strides-free f64 transpose of a [r, c] matrix.
pub fn transpose(v: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut o = vec![0.0; v.len()];
    for i in 0..r {
        for j in 0..c {
            o[j * r + i] = v[i * c + j];
        }
    }
    o
}

pub const FLOATS: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];
