//! One row times a row-major matrix, y[n] = Σ_k x[k]·B[k, n]: decoding with float weights,
//! where every weight is read once per token and the speed is the speed of reading B.
//!
//! Each task takes a run of rows of B and a band of at most [`MATVEC_COLS`] columns, so it reads
//! B front to back (whole rows where n fits one band, as in every projection of the supported
//! models), four rows per pass over its partial sums; the caller adds the partial sums of each
//! column. On x86-64 with AVX2, f32 / f16 / bf16 run [`rows_times_matrix_avx2`]: eight
//! columns per step (f16 widened by `vcvtph2ps`, bf16 by a shift) and a software prefetch
//! [`AHEAD_BYTES`] down the task's own rows. f64, and CPUs without AVX2, run the generic body,
//! which the compiler vectorises.
//!
//! Measured on the 2-core AVX-512 build machine (`bench_ops matvec`; `model_bench` decode):
//! before, each task read a 256-column band of every row (512-byte runs far apart for f16), one
//! row per pass. With 576 × 49152 weights that moved f32 / f16 / bf16 at 40–43 / 15–16 / 18–19
//! GB/s; this layout moves them at 40–46 / 41–43 / 40–41. SmolLM2 decodes f32 / f16 / bf16
//! weights 1.1–1.2 / 2.3–2.6 / 2.0–2.2× faster (BENCHMARKS.md, "Float decode").

use super::matmul::Dims;
use super::Float;
use crate::storage::{contiguous, raw_slice};
#[cfg(target_arch = "x86_64")]
use half::{bf16, f16};
use plumb_core::{Result, View};
#[cfg(target_arch = "x86_64")]
use std::any::TypeId;

/// Columns of `y` one task accumulates at most: its partial sums (8 KiB in f32) stay in L1
/// while it streams its rows of B.
const MATVEC_COLS: usize = 2048;
/// Bytes of B one task streams at least, so that handing it to a helper pays.
const MATVEC_TASK_BYTES: usize = 64 << 10;
/// Tasks per thread for a large B, so that a thread slowed by other work hands its share on.
const MATVEC_TASKS_PER_THREAD: usize = 4;

/// acc[c] += Σ_k x[k]·B[k, c] over the rows of x, B row-major (row stride `rs`), acc.len()
/// columns wide (the caller's sums start at zero): four rows per pass, one load and store of the
/// sums per four products.
#[inline(always)]
fn rows_times_matrix_body<T: Float>(acc: &mut [T::A], x: &[T], b: &[T], rs: usize) {
    let w = acc.len();
    let quads = x.len() / 4;
    for q in 0..quads {
        let k = 4 * q;
        let [x0, x1, x2, x3] = [0, 1, 2, 3].map(|i| x[k + i].to_acc());
        let [r0, r1, r2, r3] = [0, 1, 2, 3].map(|i| &b[(k + i) * rs..][..w]);
        for c in 0..w {
            acc[c] += x0 * r0[c].to_acc()
                + x1 * r1[c].to_acc()
                + (x2 * r2[c].to_acc() + x3 * r3[c].to_acc());
        }
    }
    for (k, &xk) in x.iter().enumerate().skip(4 * quads) {
        let xk = xk.to_acc();
        for (a, &v) in acc.iter_mut().zip(&b[k * rs..][..w]) {
            *a += xk * v.to_acc();
        }
    }
}

multiversion!(
    fn rows_times_matrix[T: Float](acc: &mut [T::A], x: &[T], b: &[T], rs: usize) = rows_times_matrix_body[T]
);

/// Bytes ahead of the rows being read that a task prefetches, down its own columns: the
/// hardware prefetchers alone left SmolLM2's bf16 decode at 55 tok/s, 16–32 rows ahead
/// (18–36 KiB for its 576-wide rows) gave 62–70 (`model_bench`, 2-core build machine).
#[cfg(target_arch = "x86_64")]
const AHEAD_BYTES: usize = 24 << 10;

/// Rows ahead to prefetch for rows `w` values of `T` wide (at least 4: the next pass).
#[cfg(target_arch = "x86_64")]
fn ahead<T>(w: usize) -> usize {
    (AHEAD_BYTES / (w * std::mem::size_of::<T>()).max(1)).clamp(4, 64)
}

/// f32 and the halves as eight f32 lanes, for the AVX2 form of [`rows_times_matrix`]
/// ([`rows_times_matrix_avx2`]).
#[cfg(target_arch = "x86_64")]
trait Lanes8: Float<A = f32> {
    /// Eight values from `p` widened to f32.
    ///
    /// # Safety
    /// Eight values are readable at `p`; called only inside functions with AVX2 and F16C on.
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

#[cfg(target_arch = "x86_64")]
impl Lanes8 for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes8 for f16 {
    /// `vcvtph2ps`: the generic body widens f16 in seven integer and float steps per vector,
    /// which made f16 compute-bound here (28 against 43 GB/s on the 576 × 49152 case).
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes8 for bf16 {
    /// bf16 is the top half of an f32: zero-extend and shift.
    #[inline(always)]
    unsafe fn load8(p: *const bf16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
    }
}

/// [`rows_times_matrix`] with AVX2 and FMA, eight columns per step, prefetching each cache line
/// [`ahead`] rows down the same columns. On the bench's 576 × 49152 case, which stays in this
/// machine's L3, it moves f32 as fast as the AVX-512 generic body (40–46 GB/s); decoding reads
/// from memory, where the prefetch took SmolLM2 f32 from 42 to 47 tok/s.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_times_matrix_avx2<T: Lanes8>(acc: &mut [f32], x: &[T], b: &[T], rs: usize) {
    let w = acc.len();
    let ahead = ahead::<T>(w) * rs;
    let quads = x.len() / 4;
    for q in 0..quads {
        let k = 4 * q;
        let row = |i: usize| &b[(k + i) * rs..][..w];
        let xs = [x[k], x[k + 1], x[k + 2], x[k + 3]].map(|v| v.to_acc());
        avx2_pass::<T, 4>(acc, xs, [row(0), row(1), row(2), row(3)], ahead);
    }
    for (k, &xk) in x.iter().enumerate().skip(4 * quads) {
        avx2_pass::<T, 1>(acc, [xk.to_acc()], [&b[k * rs..][..w]], ahead);
    }
}

/// acc[c] += Σ_i xs[i]·rows[i][c], every row acc.len() long: the body of
/// [`rows_times_matrix_avx2`], inlined there (whose target features it needs).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx2_pass<T: Lanes8, const R: usize>(
    acc: &mut [f32],
    xs: [f32; R],
    rows: [&[T]; R],
    ahead: usize,
) {
    use std::arch::x86_64::*;
    let full = acc.len() / 8 * 8;
    let line = 64 / std::mem::size_of::<T>();
    let xv = xs.map(|v| _mm256_set1_ps(v));
    let mut c = 0;
    while c < full {
        if c % line == 0 {
            for row in &rows {
                super::prefetch(row.as_ptr().wrapping_add(ahead + c));
            }
        }
        // c + 8 ≤ acc.len() = every row's length
        let mut s = _mm256_loadu_ps(acc.as_ptr().add(c));
        for i in 0..R {
            s = _mm256_fmadd_ps(xv[i], T::load8(rows[i].as_ptr().add(c)), s);
        }
        _mm256_storeu_ps(acc.as_mut_ptr().add(c), s);
        c += 8;
    }
    for (c, a) in acc.iter_mut().enumerate().skip(full) {
        *a += (0..R).map(|i| xs[i] * rows[i][c].to_acc()).sum::<f32>();
    }
}

/// `x` as a slice of `U`, where `U` is `T`.
#[cfg(target_arch = "x86_64")]
fn same<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
    // SAFETY: T and U are the same type
    (TypeId::of::<T>() == TypeId::of::<U>())
        .then(|| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const U, x.len()) })
}

/// [`rows_times_matrix`], through [`rows_times_matrix_avx2`] for f32 / f16 / bf16 where the CPU
/// has AVX2, FMA and F16C (x86-64).
fn rows_times<T: Float>(acc: &mut [T::A], x: &[T], b: &[T], rs: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() != super::simd::Level::Baseline {
        /// Run the AVX2 kernel where T is `$t` (whose accumulator is f32).
        macro_rules! try_avx2 {
            ($t:ty) => {
                if let (Some(x), Some(b)) = (same::<T, $t>(x), same::<T, $t>(b)) {
                    // SAFETY: T is $t, so T::A is f32; the level says the CPU has AVX2, FMA and
                    // F16C
                    return unsafe {
                        let acc =
                            std::slice::from_raw_parts_mut(acc.as_mut_ptr() as *mut f32, acc.len());
                        rows_times_matrix_avx2::<$t>(acc, x, b, rs)
                    };
                }
            };
        }
        try_avx2!(f32);
        try_avx2!(f16);
        try_avx2!(bf16);
    }
    rows_times_matrix(acc, x, b, rs)
}

/// The one-row case of a matmul with a row-major right side (`a` one row of k, `b` k × n with
/// unit column stride), or `None` for any other case.
pub fn matvec<T: Float>(a: &View, b: &View, d: Dims) -> Result<Option<Vec<T>>> {
    let bl = b.layout;
    let r = bl.rank();
    if d.m * d.batch != 1 || d.k == 0 || d.n == 0 || bl.strides[r - 1] != 1 {
        return Ok(None);
    }
    let x = contiguous::<T>("matmul", a)?;
    let bm = &raw_slice::<T>("matmul", b)?[bl.offset..];
    let (k, n, rs) = (d.k, d.n, bl.strides[r - 2]);
    let bands = n.div_ceil(MATVEC_COLS);
    let width = n.div_ceil(bands);
    let threads = crate::par::threads();
    let by_size = (k * n * std::mem::size_of::<T>() / MATVEC_TASK_BYTES).max(1);
    let tasks = by_size.min(threads * MATVEC_TASKS_PER_THREAD);
    // runs of rows per band, so that bands × runs ≈ tasks
    let per_run = k.div_ceil(tasks.div_ceil(bands).min(k));
    let runs = k.div_ceil(per_run);
    // partial sums, zeroed here and added to by the tasks: run-major, each run `bands` chunks
    // of `width` (the last band's chunk only partly used where width does not divide n)
    let mut partial = vec![<T::A as super::Acc>::ZERO; runs * bands * width];
    crate::par::chunks_mut(&mut partial, width, |i, acc| {
        let (run, band) = (i / bands, i % bands);
        let (k0, c0) = (run * per_run, band * width);
        let xs = &x[k0..(k0 + per_run).min(k)];
        rows_times(&mut acc[..width.min(n - c0)], xs, &bm[k0 * rs + c0..], rs)
    });
    // the first run's sums plus every other run's, one run at a time
    let (sums, others) = partial.split_at_mut(bands * width);
    for run in others.chunks_exact(bands * width) {
        for (s, &p) in sums[..n].iter_mut().zip(&run[..n]) {
            *s += p;
        }
    }
    Ok(Some(sums[..n].iter().map(|&s| T::from_acc(s)).collect()))
}
