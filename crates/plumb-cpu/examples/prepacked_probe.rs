//! Probe (diagnostic): f32 linear layers at MiniLM's shapes with the weight packed once
//! ([`PackedB`]) against the same kernel packing it on every call and against the `gemm` crate,
//! on the team's threads (each a block of columns, as `gemm_team` splits them), with the weights
//! cycling through a ring as large as MiniLM's (42 MB) so they come from memory as in a forward.
//! The three alternate sample by sample; it prints the median GFLOP/s of each.
//!
//!     cargo run --release -p plumb-cpu --example prepacked_probe [ROWS]
use plumb_cpu::kernels::matmul::{Dst, Mat};
use plumb_cpu::kernels::matmul_f32_avx2::{has_avx2_fma, sgemm, sgemm_packed, PackedB};
use std::time::Instant;

#[derive(Clone, Copy)]
struct Ptrs(*const f32, *mut f32);
impl Ptrs {
    /// The pointers (a method, so closures capture the whole `Ptrs`, which is `Sync`).
    fn get(self) -> (*const f32, *mut f32) {
        (self.0, self.1)
    }
}
// SAFETY: the tasks read a and write disjoint columns of c
unsafe impl Send for Ptrs {}
unsafe impl Sync for Ptrs {}

fn main() {
    if !has_avx2_fma() {
        println!("skipped: this CPU has no AVX2 + FMA, which the kernel needs");
        return;
    }
    let m: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    let threads = plumb_cpu::par::threads();
    for (k, n) in [(384, 384), (384, 1536), (1536, 384)] {
        let count = (42 << 20) / (k * n * 4);
        let ws: Vec<Vec<f32>> = (0..count)
            .map(|w| {
                (0..k * n)
                    .map(|i| ((i * 5 + w) % 11) as f32 / 11.0 - 0.5)
                    .collect()
            })
            .collect();
        let Some(packed) = ws
            .iter()
            .map(|w| PackedB::pack(w, k, n, n))
            .collect::<Option<Vec<PackedB>>>()
        else {
            eprintln!("{k} x {n}: a weight is shorter than k·n values");
            return;
        };
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 + 3) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let mut c = vec![0f32; m * n];
        let per = n.div_ceil(threads).next_multiple_of(16);
        let p = Ptrs(a.as_ptr(), c.as_mut_ptr());
        let call = |how: usize, w: usize| {
            plumb_cpu::par::for_each(n.div_ceil(per), |t| {
                let (pa, pc) = p.get();
                let (c0, cols) = (t * per, per.min(n - t * per));
                let d = Dst {
                    ptr: unsafe { pc.add(c0) },
                    rs: n,
                    read: false,
                    alpha: 0.0,
                    beta: 1.0,
                };
                let am = Mat {
                    ptr: pa,
                    cs: 1,
                    rs: k as isize,
                };
                let bm = Mat {
                    ptr: unsafe { ws[w].as_ptr().add(c0) },
                    cs: 1,
                    rs: n as isize,
                };
                // SAFETY: a holds m·k, each weight k·n values; this task writes its columns only
                unsafe {
                    match how {
                        0 => gemm::gemm(
                            m,
                            cols,
                            k,
                            d.ptr,
                            1,
                            n as isize,
                            false,
                            am.ptr,
                            1,
                            k as isize,
                            bm.ptr,
                            1,
                            n as isize,
                            0f32,
                            1f32,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        ),
                        1 => sgemm((m, cols, k), d, am, bm),
                        _ => sgemm_packed((m, cols, k), d, am, &packed[w], c0),
                    }
                }
            });
        };
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        let reps = 200;
        for round in 0..12 {
            for (how, t) in times.iter_mut().enumerate() {
                let s = Instant::now();
                for r in 0..reps {
                    call(how, r % count);
                }
                if round > 0 {
                    t.push(s.elapsed().as_secs_f64() / reps as f64);
                }
            }
        }
        let flop = 2.0 * (m * k * n) as f64;
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            flop / v[v.len() / 2] / 1e9
        };
        let [g, o, pk] = &mut times;
        println!(
            "{m} x {k} x {n}, {threads} threads, {count} weights: gemm {:.1}  ours {:.1}  prepacked {:.1} GFLOP/s",
            med(g),
            med(o),
            med(pk)
        );
    }
}
