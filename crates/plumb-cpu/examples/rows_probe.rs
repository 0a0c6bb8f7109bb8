//! Probe: `kernels/matmul_rows.rs` (few rows × a row-major weight read in place, and the same
//! weight packed as strips) against the gemm crate, one thread, for the linear layers of MiniLM
//! at batch one (40 rows). With
//! `COLD=1` each call takes the next of enough copies of the weight to fill 40 MB, so the
//! weights come from L3 as they do in the model; otherwise one weight stays in L2. `M=…` sets
//! the number of rows (up to `MAX_ROWS` read in place; any number for the strips).
//!
//!     PLUMB_NUM_THREADS=1 cargo run --release -p plumb-cpu --example rows_probe
//!     COLD=1 PLUMB_NUM_THREADS=1 cargo run --release -p plumb-cpu --example rows_probe
//!
//! Where the kernel does not apply (no AVX-512) it says so and exits.

use plumb_cpu::kernels::matmul_rows::{applies, matmul_rows, PackedStrips, Rows, B, MAX_ROWS};
use std::time::Instant;

fn main() {
    if !applies(1, 1, 1) {
        println!("rows_probe: matmul_rows needs AVX-512, which this CPU (or PLUMB_CPU_SIMD) lacks");
        return;
    }
    let cold = std::env::var("COLD").is_ok();
    let val = |i: usize, s: usize| ((i * s) % 1000) as f32 * 1e-3 - 0.5;
    // rows of a: M=…, default 40 (a sentence)
    let m: usize = std::env::var("M")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let in_place = applies(m, 1, 1);
    if !in_place {
        println!("rows_probe: M={m} rows: only the strips (in place: 1 to {MAX_ROWS} rows)");
    }
    for (k, n) in [(384, 1152), (384, 384), (384, 1536), (1536, 384)] {
        let copies = if cold {
            (40_000_000 / (k * n * 4)).max(1)
        } else {
            1
        };
        let a: Vec<f32> = (0..m * k).map(|i| val(i, 7919)).collect();
        let bs: Vec<Vec<f32>> = (0..copies)
            .map(|c| (0..k * n).map(|i| val(i + c, 104729)).collect())
            .collect();
        let mut want = vec![0f32; m * n];
        // the best of 20 batches of 100 calls: a shared machine's noise only slows a batch down
        let (reps, batches) = (100, 20);
        let flops = 2.0 * (m * k * n) as f64 * reps as f64;
        let best = |f: &mut dyn FnMut(usize)| {
            (0..batches)
                .map(|i| {
                    let t = Instant::now();
                    (i * reps..(i + 1) * reps).for_each(&mut *f);
                    flops / t.elapsed().as_secs_f64() / 1e9
                })
                .fold(0f64, f64::max)
        };
        {
            let g = best(&mut |r| {
                let b = &bs[r % copies];
                // SAFETY: a is m × k, b is k × n and want m × n, all row-major
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        want.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
            });
            let mut got = None;
            let p = best(&mut |r| {
                let (b, lda, ldb) = (&bs[r % copies], k, n);
                let x = Rows {
                    a: &a,
                    lda,
                    b: B::Rows(b),
                    ldb,
                    m,
                    k,
                    n,
                };
                if in_place {
                    got = matmul_rows(x, None, None, None);
                }
            });
            let Some(strips) = bs
                .iter()
                .map(|b| PackedStrips::pack(b, k, n))
                .collect::<Option<Vec<PackedStrips>>>()
            else {
                println!("rows_probe: a {k}x{n} weight does not pack as strips of 64 columns");
                return;
            };
            let mut got_s = None;
            let ps = best(&mut |r| {
                let x = Rows {
                    a: &a,
                    lda: k,
                    b: B::Strips(strips[r % copies].data()),
                    ldb: 64,
                    m,
                    k,
                    n,
                };
                got_s = matmul_rows(x, None, None, None);
            });
            let Some(got_s) = got_s else {
                println!("rows_probe: matmul_rows declined the strips of {m}x{k}x{n}");
                return;
            };
            // the largest difference from the gemm crate of either path
            let diff = [got.as_ref().unwrap_or(&got_s), &got_s]
                .iter()
                .flat_map(|g| want.iter().zip(g.iter()).map(|(x, y)| (x - y).abs()))
                .fold(0f32, f32::max);
            let p = if in_place {
                format!("{p:.1}")
            } else {
                "-".into()
            };
            println!("{m}x{k}x{n} weights {}: gemm crate {g:.1}, matmul_rows {p}, strips {ps:.1} GFLOP/s (max diff {diff:e})",
                if cold { "from L3" } else { "in L2" });
        }
    }
}
