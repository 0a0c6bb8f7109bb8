//! Probe (diagnostic): Plumb's AVX2 f32 GEMM (`matmul_f32_avx2.rs`) against the `gemm` crate,
//! same operands, on 1 and 2 threads (each thread a block of columns, as `gemm_team` splits a
//! square product). The two alternate sample by sample, so drift in this shared machine's speed
//! hits both; it prints the median GFLOP/s of each and the median of the per-pair ratios.
//!
//!     cargo run --release -p plumb-cpu --example sgemm_probe [m k n [1 = b transposed]]
use plumb_cpu::kernels::matmul::{Dst, Mat};
use plumb_cpu::kernels::matmul_f32_avx2::{has_avx2_fma, sgemm};
use std::time::Instant;

#[derive(Clone, Copy)]
struct Ptrs(*const f32, *const f32, *mut f32);
// SAFETY: the threads read a and b and write disjoint columns of c
unsafe impl Send for Ptrs {}
unsafe impl Sync for Ptrs {}

/// c = a·b on `threads` threads, each a block of columns (or of rows where the output has more
/// rows than columns, as `gemm_team` splits in two), with ours or the gemm crate.
fn run(ours: bool, threads: usize, (m, k, n, bt): (usize, usize, usize, bool), p: Ptrs) {
    let by_rows = threads > 1 && n < m;
    let per = if by_rows {
        m.div_ceil(threads)
    } else {
        n.div_ceil(threads).next_multiple_of(16)
    };
    let total = if by_rows { m } else { n };
    std::thread::scope(|s| {
        for t in 0..threads {
            let x0 = t * per;
            if x0 >= total {
                break;
            }
            let len = per.min(total - x0);
            s.spawn(move || {
                let p = p;
                let (brs, bcs) = if bt { (1, k as isize) } else { (n as isize, 1) };
                let (r0, c0, rows, cols) = if by_rows {
                    (x0, 0, len, n)
                } else {
                    (0, x0, m, len)
                };
                // SAFETY: a holds m·k, b k·n values as the strides say; this thread writes its
                // own rows or columns of c only
                unsafe {
                    let a = p.0.add(r0 * k);
                    let b = p.1.offset(c0 as isize * bcs);
                    let c = p.2.add(r0 * n + c0);
                    if ours {
                        let d = Dst {
                            ptr: c,
                            rs: n,
                            read: false,
                            alpha: 0.0,
                            beta: 1.0,
                        };
                        let am = Mat {
                            ptr: a,
                            cs: 1,
                            rs: k as isize,
                        };
                        sgemm(
                            (rows, cols, k),
                            d,
                            am,
                            Mat {
                                ptr: b,
                                cs: bcs,
                                rs: brs,
                            },
                        );
                    } else {
                        gemm::gemm(
                            rows,
                            cols,
                            k,
                            c,
                            1,
                            n as isize,
                            false,
                            a,
                            1,
                            k as isize,
                            b,
                            bcs,
                            brs,
                            0f32,
                            1f32,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                }
            });
        }
    });
}

fn main() {
    if !has_avx2_fma() {
        println!("skipped: this CPU has no AVX2 + FMA, which the kernel needs");
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let shapes: Vec<(usize, usize, usize, bool)> = if args.len() >= 3 {
        vec![(args[0], args[1], args[2], args.get(3) == Some(&1))]
    } else {
        vec![
            (256, 256, 256, false),
            (512, 512, 512, false),
            (1024, 1024, 1024, false),
            (2048, 2048, 2048, false),
            (512, 384, 1536, true),
            (512, 1536, 384, true),
            (512, 384, 384, true),
            (13, 384, 1536, true),
        ]
    };
    for shape in shapes {
        let (m, k, n, bt) = shape;
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 + 3) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 + 1) % 11) as f32 / 11.0 - 0.5)
            .collect();
        let mut c1 = vec![0f32; m * n];
        let mut c2 = vec![0f32; m * n];
        let (p1, p2) = (
            Ptrs(a.as_ptr(), b.as_ptr(), c1.as_mut_ptr()),
            Ptrs(a.as_ptr(), b.as_ptr(), c2.as_mut_ptr()),
        );
        for threads in [1, 2] {
            let time = |ours: bool, reps: usize| {
                let t = Instant::now();
                for _ in 0..reps {
                    run(ours, threads, shape, if ours { p1 } else { p2 });
                }
                t.elapsed().as_secs_f64() / reps as f64
            };
            time(true, 1);
            time(false, 1);
            let reps = ((0.05 / time(false, 1).max(1e-9)) as usize).clamp(1, 10000);
            let (mut ours, mut theirs, mut ratio) = (vec![], vec![], vec![]);
            for _ in 0..15 {
                let (o, t) = (time(true, reps), time(false, reps));
                ours.push(o);
                theirs.push(t);
                ratio.push(t / o);
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
            let diff = c1
                .iter()
                .zip(&c2)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
            let (bo, bt_) = (best(&ours), best(&theirs));
            println!(
                "m {m} k {k} n {n} b{} threads {threads}: median plumb {:.1} gemm {:.1} GFLOP/s, ratio {:.3}; best {:.1} / {:.1}, ratio {:.3}; max diff {diff:.1e}",
                if bt { "ᵀ" } else { " " },
                gf(med(&mut ours)),
                gf(med(&mut theirs)),
                med(&mut ratio),
                gf(bo),
                gf(bt_),
                bt_ / bo
            );
        }
    }
}
