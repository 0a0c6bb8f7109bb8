use plumb_core::{DType, Device, Tensor};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let d = Device::new(Arc::new(plumb_cpu::CpuBackend::new())).unwrap();
    let dt: DType = std::env::args()
        .nth(1)
        .unwrap_or("bf16".into())
        .parse()
        .unwrap();
    let n = 1024;
    let a = Tensor::ones([n, n], dt, &d).unwrap();
    let b = Tensor::ones([n, n], dt, &d).unwrap();
    let mut best = f64::MAX;
    for _ in 0..30 {
        let t = Instant::now();
        let _c = a.matmul(&b).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{dt} {n}: {:.1} GFLOP/s",
        2.0 * (n as f64).powi(3) / best / 1e9
    );
}
