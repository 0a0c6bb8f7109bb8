//! Direct gemm-crate timing (diagnostic): `cargo run --release -p plumb-cpu --example gemm_probe`.
use std::time::Instant;
fn main() -> Result<(), rayon::ThreadPoolBuildError> {
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        for n in [1024usize, 2048] {
            let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32).collect();
            let b = a.clone();
            let mut c = vec![0f32; n * n];
            let par = if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                pool.install(|| unsafe {
                    gemm::gemm(
                        n,
                        n,
                        n,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        n as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0f32,
                        1f32,
                        false,
                        false,
                        false,
                        par,
                    )
                });
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "threads {threads} n {n}: {:.1} GFLOP/s",
                2.0 * (n as f64).powi(3) / best / 1e9
            );
        }
    }
    Ok(())
}
