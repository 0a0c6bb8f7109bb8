//! Shared by the plumb-wgpu tests: the devices to run on and an f64 comparison.
#![allow(dead_code)]

use plumb_core::{DType, Device, Policy, Tensor};
use std::sync::Arc;

/// gpu:0, the first GL adapter (if it is not gpu:0) and gpu:0 under the apple-m2 profile.
/// Empty (with "skipped: no adapter" printed) when wgpu finds none.
pub fn devices() -> Vec<(String, Device)> {
    std::env::set_var(
        "XDG_RUNTIME_DIR",
        std::env::var("XDG_RUNTIME_DIR").unwrap_or("/tmp".into()),
    );
    let all = plumb_wgpu::discover(None).expect("discover");
    if all.is_empty() {
        println!("skipped: no adapter");
        return vec![];
    }
    let mut out = Vec::new();
    let mut gl = None;
    for (i, b) in all.into_iter().enumerate() {
        use plumb_core::Backend;
        let api = b.info().api.clone();
        let label = format!("{} {} ({})", b.info().id, b.info().name, api);
        if i == 0 {
            out.push((
                label,
                Device::with_backend_policy(Arc::new(b), Policy::AUTO),
            ));
        } else if api == "Gl" && gl.is_none() {
            gl = Some((
                label,
                Device::with_backend_policy(Arc::new(b), Policy::AUTO),
            ));
        }
    }
    out.extend(gl);
    if let Some(b) = plumb_wgpu::discover(Some("apple-m2"))
        .expect("discover")
        .into_iter()
        .next()
    {
        use plumb_core::Backend;
        let label = format!("{} {} (apple-m2 profile)", b.info().id, b.info().name);
        out.push((
            label,
            Device::with_backend_policy(Arc::new(b), Policy::AUTO),
        ));
    }
    out
}

/// Deterministic test values in [lo, hi).
pub fn values(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut r = plumb_core::rng::SplitMix64::new(seed);
    (0..n).map(|_| lo + (hi - lo) * r.next_f64()).collect()
}

/// Values as the dtype stores them (what the oracle should see as input).
pub fn rounded(v: &[f64], dt: DType) -> Vec<f64> {
    let b = plumb_core::convert::f64_to_bytes(dt, v).unwrap();
    plumb_core::convert::bytes_to_f64(dt, &b, v.len()).unwrap()
}

/// Compare with the per-dtype tolerance (relative, with the same absolute floor); `scale`
/// widens it for ops that accumulate.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], dt: DType, scale: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = dt.tolerance() * scale;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: got {g}, want NaN");
            continue;
        }
        if w.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]");
            continue;
        }
        let err = (g - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w} (err {err:e}, tol {tol:e})"
        );
    }
}

pub fn t(v: &[f64], dt: DType, shape: &[usize], d: &Device) -> Tensor {
    Tensor::from_f64(v, dt, shape, d).unwrap()
}
