//! Probe (not a benchmark of Plumb's kernels): an f32 kernel for few rows over a weight packed
//! once into 64-column panels, against the gemm crate (which packs the weight on every call), on
//! one thread, for the linear-layer shapes of MiniLM at batch 1 and SmolLM2 decoding in batches.
//! It asks whether keeping f32 weights packed at load would pay (see BENCHMARKS.md, Models).
//!
//!     cargo run --release -p plumb-cpu --example packed_f32_probe
//!
//! Needs AVX-512 (x86-64); elsewhere it says so and exits.

#[cfg(target_arch = "x86_64")]
mod probe {
    use std::arch::x86_64::*;
    use std::time::Instant;

    const PANEL: usize = 64;
    const ROWS: usize = 6;

    /// pack b [k, n] row-major into panels of 64 columns: panel p = k rows × 64 contiguous (zero padded)
    fn pack(b: &[f32], k: usize, n: usize) -> Vec<f32> {
        let panels = n.div_ceil(PANEL);
        let mut out = vec![0f32; panels * k * PANEL];
        for p in 0..panels {
            for r in 0..k {
                for c in 0..PANEL.min(n - p * PANEL) {
                    out[(p * k + r) * PANEL + c] = b[r * n + p * PANEL + c];
                }
            }
        }
        out
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    unsafe fn block<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
    ) {
        let mask = |v: usize| -> __mmask16 {
            ((1u32 << cols.saturating_sub(16 * v).min(16)) - 1) as __mmask16
        };
        let masks = [mask(0), mask(1), mask(2), mask(3)];
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        for p in 0..k {
            let row = bp.add(p * PANEL);
            let bv = [
                _mm512_loadu_ps(row),
                _mm512_loadu_ps(row.add(16)),
                _mm512_loadu_ps(row.add(32)),
                _mm512_loadu_ps(row.add(48)),
            ];
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * lda + p));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(x, bv, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc + 16 * v), masks[v], acc);
            }
        }
    }

    unsafe fn matmul_packed(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        bp: &[f32],
        c: &mut [f32],
        panels: std::ops::Range<usize>,
    ) {
        for p in panels {
            let cols = PANEL.min(n - p * PANEL);
            let b = bp.as_ptr().add(p * k * PANEL);
            let mut i0 = 0;
            while i0 < m {
                let rows = ROWS.min(m - i0);
                let (ap, cp) = (
                    a.as_ptr().add(i0 * k),
                    c.as_mut_ptr().add(i0 * n + p * PANEL),
                );
                match rows {
                    6 => block::<6>(k, ap, k, b, cp, n, cols),
                    5 => block::<5>(k, ap, k, b, cp, n, cols),
                    4 => block::<4>(k, ap, k, b, cp, n, cols),
                    3 => block::<3>(k, ap, k, b, cp, n, cols),
                    2 => block::<2>(k, ap, k, b, cp, n, cols),
                    _ => block::<1>(k, ap, k, b, cp, n, cols),
                }
                i0 += rows;
            }
        }
    }

    pub fn main() {
        for (m, k, n) in [
            (40, 384, 384),
            (40, 384, 1536),
            (40, 1536, 384),
            (128, 384, 1536),
            (8, 576, 1536),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5)
                .collect();
            let bp = pack(&b, k, n);
            let mut c1 = vec![0f32; m * n];
            let mut c2 = vec![0f32; m * n];
            let reps = (1e10 / (2.0 * (m * k * n) as f64)) as usize;
            let flops = 2.0 * (m * k * n) as f64;
            let gemm1 = |c: &mut [f32]| unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
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
            let panels = n.div_ceil(PANEL);
            for _ in 0..2 {
                gemm1(&mut c1);
                let t = Instant::now();
                for _ in 0..reps {
                    gemm1(&mut c1);
                }
                let g = flops / (t.elapsed().as_secs_f64() / reps as f64) / 1e9;
                unsafe { matmul_packed(m, n, k, &a, &bp, &mut c2, 0..panels) };
                let t = Instant::now();
                for _ in 0..reps {
                    unsafe { matmul_packed(m, n, k, &a, &bp, &mut c2, 0..panels) };
                }
                let p = flops / (t.elapsed().as_secs_f64() / reps as f64) / 1e9;
                let err = c1
                    .iter()
                    .zip(&c2)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                println!("{m}x{k}x{n} one thread: gemm {g:.1}, packed kernel {p:.1} GFLOP/s (max diff {err:e})");
            }
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return probe::main();
    }
    println!("packed_f32_probe: needs AVX-512 (x86-64)");
}
