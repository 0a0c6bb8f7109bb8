//! `matmul_f32` through a packed AVX2 + FMA GEMM of Plumb's own, for large products on CPUs
//! with AVX2 and without AVX-512 ([`applies`]); the `gemm` crate runs the others.
//!
//! It was written for the AVX2-only AMD EPYC (Zen 3) build machine, where the `gemm` crate's
//! AVX2 kernel held f32 matmul below OpenBLAS. Measured there (BENCHMARKS.md, "An AVX2 f32 GEMM
//! of our own"): ahead of the `gemm` crate in isolation at every shape but a few rows (2048³:
//! +16% in `bench_ops`), but in MiniLM level at batch 32 and 9% behind at batch 1, so by default
//! it takes only blocks of at least [`LARGE`] multiply-adds (products with a weight packed at
//! load, below, run it at every size). `PLUMB_CPU_SGEMM=plumb` sends it
//! every f32 block whose `b` rows are contiguous, `PLUMB_CPU_SGEMM=gemm` none.
//!
//! Linear layers' f32 weights are packed once at load into the panels the microkernel reads
//! ([`PackedB`], through `Backend::pack_matmul_weight`) wherever this kernel runs
//! ([`packs_weights`]), and their products go to [`sgemm_packed`] at every size: it then packs
//! only the activations. Measured on the AMD machine (`examples/prepacked_probe.rs`, 2 threads,
//! weights cycling through 42 MB as in MiniLM): 45 rows 1.5–2.1× the `gemm` crate, 13 rows
//! 1.8–2.3×, 2000 rows 1.1–1.2×; MiniLM at batch 1 1.59× (`scripts/ab.sh`, BENCHMARKS.md).
//!
//! The method is the usual one of BLAS libraries (Goto / BLIS):
//!
//! - `b` is packed up to [`KC`] rows × [`NC`] columns at a time into panels of [`NR`] columns
//!   (each panel `kc` rows of 16 contiguous values, zero padded);
//! - `a` is packed up to [`MC`] rows × `kc` at a time into panels of [`MR`] rows (`kc` groups
//!   of 6 values);
//! - the 6 × 16 microkernel keeps its block of the output in 12 AVX registers, reads one row of
//!   a `b` panel and broadcasts six values of `a` per step (12 FMAs), fetches its output block
//!   while it computes, and writes the block once per `kc`.
//!
//! It runs on one thread; `matmul.rs` splits a product into one block per thread as it does for
//! the `gemm` crate. Each output element is the same sum as the `gemm` crate's in another order
//! (f32 rounding differs in the last bits).

use super::matmul::{Dst, Mat};
use std::cell::RefCell;

/// Rows of the microkernel's output block.
pub const MR: usize = 6;
/// Columns of the microkernel's output block (two AVX registers).
pub const NR: usize = 16;
/// Most depth of one block: a 16-column panel of `b` (16 KiB) stays in L1 while the kernel
/// walks six rows of `a` at a time down the block.
const KC: usize = 256;
/// Rows of `a` per block: 144 × 256 × 4 B = 144 KiB, which stays in Zen 3's 512 KiB L2 while
/// every panel of `b` passes over it.
const MC: usize = 144;
/// Columns of `b` packed at once: 256 × 2048 × 4 B = 2 MiB per thread.
const NC: usize = 2048;

/// Multiply-adds (m·n·k) of one thread's block from which the kernel takes it by default (its
/// `b` not packed at load): 512³ split in two (2²⁶) and larger are in, 256³ (2²³) is not. At
/// 2²⁶ rather than 2³⁰ since the fourth AMD session: `bench_ops` f32 512 / 1024 and f16 1024
/// (widened to f32) read 1.15 / 1.26–1.30 / 1.08× the `gemm` crate in alternating pairs
/// (BENCHMARKS.md). MiniLM's linear layers no longer come here (their weights are packed).
pub const LARGE: usize = 1 << 26;

/// How f32 blocks are routed (`PLUMB_CPU_SGEMM`, read once).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// blocks of at least [`LARGE`] multiply-adds, on a CPU without AVX-512
    Large,
    /// `plumb`: every block
    All,
    /// `gemm`: none
    Never,
}

/// The route `PLUMB_CPU_SGEMM` and the CPU pick (read once).
fn route() -> Route {
    static ROUTE: std::sync::OnceLock<Route> = std::sync::OnceLock::new();
    *ROUTE.get_or_init(|| {
        match std::env::var("PLUMB_CPU_SGEMM").as_deref() {
            _ if !has_avx2_fma() => Route::Never,
            Ok("plumb") => Route::All,
            Ok("gemm") => Route::Never,
            // with AVX-512 the gemm crate's AVX-512 kernels run instead
            _ if super::simd::level() == super::simd::Level::V3 => Route::Large,
            _ => Route::Never,
        }
    })
}

/// Whether an m × k by k × n block runs here rather than in the `gemm` crate.
pub fn applies(m: usize, n: usize, k: usize) -> bool {
    match route() {
        Route::All => true,
        Route::Never => false,
        Route::Large => m.saturating_mul(n).saturating_mul(k) >= LARGE,
    }
}

/// Whether the CPU backend packs f32 weight matrices for [`sgemm_packed`] at load: wherever
/// this kernel runs at all (on an AVX2-only CPU by default, anywhere with AVX2 under
/// `PLUMB_CPU_SGEMM=plumb`, nowhere under `PLUMB_CPU_SGEMM=gemm`).
pub fn packs_weights() -> bool {
    route() != Route::Never
}

/// The CPU has AVX2 and FMA (what [`sgemm`] needs).
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

thread_local! {
    /// This thread's packing buffers (a block, b block), kept between calls.
    static BUFS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `dst = alpha·dst + beta·a·b` (`dst` read only when `d.read`) on this thread, for an m × k
/// `a` and a k × n `b` with any strides.
///
/// # Safety
/// [`has_avx2_fma`] returned true; `a` addresses m × k and `b` k × n
/// readable elements, `d` m × n writable ones that nothing else touches during the call.
pub unsafe fn sgemm((m, n, k): (usize, usize, usize), d: Dst<f32>, a: Mat<f32>, b: Mat<f32>) {
    run((m, n, k), d, a, Source::Strided(b))
}

/// [`blocked`] with this thread's packing buffers (sized for the product; no `b` buffer for a
/// packed `b`), after the cases with nothing to multiply.
///
/// # Safety
/// As [`sgemm`] / [`sgemm_packed`] for the source given.
unsafe fn run((m, n, k): (usize, usize, usize), d: Dst<f32>, a: Mat<f32>, b: Source) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let p = d.ptr.add(i * d.rs + j);
                *p = if d.read { d.alpha * *p } else { 0.0 };
            }
        }
        return;
    }
    let with = |bufs: &mut (Vec<f32>, Vec<f32>)| {
        let a_len = MC.min(m.next_multiple_of(MR)) * KC.min(k);
        let b_len = match b {
            Source::Strided(_) => NC.min(n.next_multiple_of(NR)) * KC.min(k),
            Source::Packed(..) => 0,
        };
        for (buf, len) in [(&mut bufs.0, a_len), (&mut bufs.1, b_len)] {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
        }
        blocked((m, n, k), d, a, b, &mut bufs.0, &mut bufs.1);
    };
    BUFS.with(|bufs| match bufs.try_borrow_mut() {
        Ok(mut bufs) => with(&mut bufs),
        // only if a caller re-entered on this thread: fresh buffers
        Err(_) => with(&mut (Vec::new(), Vec::new())),
    })
}

/// Where the microkernel's panels of `b` come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// packed from a strided `b` into the thread's buffer, one block at a time
    Strided(Mat<f32>),
    /// packed once ([`PackedB`]); the block starts at this column (a multiple of [`NR`])
    Packed(&'a PackedB, usize),
}

/// Depth of each of the equal blocks a depth of `k` is split into (at most [`KC`]: 384 is two of
/// 192, not 256 and 128).
fn depth_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC))
}

/// The three blocking loops around the microkernel.
///
/// # Safety
/// As [`sgemm`] (or [`sgemm_packed`]); `pa` holds at least `min(MC, m rounded up to MR) ×
/// min(KC, k)` values and, for a strided `b`, `pb` `min(NC, n rounded up to NR) × min(KC, k)`.
unsafe fn blocked(
    (m, n, k): (usize, usize, usize),
    d: Dst<f32>,
    a: Mat<f32>,
    b: Source,
    pa: &mut [f32],
    pb: &mut [f32],
) {
    let kc_all = depth_block(k);
    // a packed b needs no column blocks: its panels are read where they lie
    let nc_all = match b {
        Source::Strided(_) => NC,
        Source::Packed(..) => n,
    };
    for jc in (0..n).step_by(nc_all) {
        let nc = nc_all.min(n - jc);
        for pc in (0..k).step_by(kc_all) {
            let kc = kc_all.min(k - pc);
            let panels = match b {
                Source::Strided(b) => {
                    pack_b(b, pc, jc, kc, nc, pb);
                    pb.as_ptr()
                }
                // depth blocks before this one hold kc_all rows of every panel
                Source::Packed(p, c0) => p
                    .data
                    .as_ptr()
                    .add(pc * p.n.next_multiple_of(NR) + (c0 + jc) * kc),
            };
            // the first depth block writes the output (scaled by alpha where it is read); the
            // later ones add to it
            let store = Store {
                keep: pc > 0 || d.read,
                scale: if pc > 0 { 1.0 } else { d.alpha },
                beta: d.beta,
            };
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                // packed even where a's rows are contiguous: reading six rows in place was level
                // with packing at MiniLM's shapes and slower at 2048 (rows 8 KiB apart share L1
                // sets; BENCHMARKS.md)
                pack_a(a, ic, pc, mc, kc, pa);
                for jr in (0..nc).step_by(NR) {
                    let bp = panels.add(jr * kc);
                    for ir in (0..mc).step_by(MR) {
                        let c = d.ptr.add((ic + ir) * d.rs + jc + jr);
                        let tile = (MR.min(mc - ir), NR.min(nc - jr));
                        micro(kc, pa.as_ptr().add(ir * kc), bp, c, d.rs, tile, store);
                    }
                }
            }
        }
    }
}

/// A k × n matrix (a linear layer's weight) packed once into the panels the microkernel reads:
/// for each depth block (the equal blocks of [`depth_block`]), the panels of [`NR`] columns
/// one after another, each `kc` rows of 16 values (zero padded past `n`). A product reads it in
/// one sequential pass per depth block instead of packing `b` again on every call.
#[derive(Debug)]
pub struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

packed_dims!(PackedB);

impl PackedB {
    /// Pack `b`, k rows of n with row stride `ldb` (≥ n), or `None` where `b` is too short.
    pub fn pack(b: &[f32], k: usize, n: usize, ldb: usize) -> Option<PackedB> {
        if k > 0 && n > 0 && (ldb < n || b.len() < (k - 1) * ldb + n) {
            return None;
        }
        let n16 = n.next_multiple_of(NR);
        let mut data = vec![0f32; k * n16];
        let kc_all = depth_block(k.max(1));
        for pc in (0..k).step_by(kc_all) {
            let kc = kc_all.min(k - pc);
            let mat = Mat {
                ptr: b.as_ptr(),
                rs: ldb as isize,
                cs: 1,
            };
            // SAFETY: rows pc .. pc + kc and columns 0 .. n lie inside b (checked above); the
            // block's n16 · kc values lie inside data
            unsafe { pack_b(mat, pc, 0, kc, n, &mut data[pc * n16..(pc + kc) * n16]) };
        }
        Some(PackedB { data, k, n })
    }

    /// The matrix back in row-major order (k rows of n).
    pub fn unpack(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let n16 = n.next_multiple_of(NR);
        let mut out = vec![0f32; k * n];
        let kc_all = depth_block(k.max(1));
        for pc in (0..k).step_by(kc_all) {
            let kc = kc_all.min(k - pc);
            let block = &self.data[pc * n16..(pc + kc) * n16];
            for (j, panel) in block.chunks_exact(NR * kc).enumerate() {
                let cols = NR.min(n - j * NR);
                for (p, src) in panel.chunks_exact(NR).enumerate() {
                    let at = (pc + p) * n + j * NR;
                    out[at..at + cols].copy_from_slice(&src[..cols]);
                }
            }
        }
        out
    }
}

/// `dst = alpha·dst + beta·a·b[.., c0 .. c0 + n]` on this thread, for an m × k `a` with any
/// strides and columns `c0 ..` of a [`PackedB`] (`c0` a multiple of [`NR`]).
///
/// # Safety
/// [`has_avx2_fma`] returned true; `a` addresses m × k readable elements, `d` m × n writable
/// ones that nothing else touches during the call; `k == b.k()`, `c0 % 16 == 0` and
/// `c0 + n <= b.n()`.
pub unsafe fn sgemm_packed(
    (m, n, k): (usize, usize, usize),
    d: Dst<f32>,
    a: Mat<f32>,
    b: &PackedB,
    c0: usize,
) {
    debug_assert!(k == b.k && c0.is_multiple_of(NR) && c0 + n <= b.n);
    run((m, n, k), d, a, Source::Packed(b, c0))
}

/// Pack rows `r0 .. r0 + mc`, columns `p0 .. p0 + kc` of `a` into panels of [`MR`] rows: panel
/// `i` holds `kc` groups of 6 values (`a[r0 + 6i + r, p0 + p]` at `i·kc·6 + p·6 + r`), rows past
/// `mc` zero.
///
/// # Safety
/// The block lies inside `a`'s elements; `out` holds `mc` rounded up to 6, times `kc`, values.
unsafe fn pack_a(a: Mat<f32>, r0: usize, p0: usize, mc: usize, kc: usize, out: &mut [f32]) {
    for (i, panel) in out[..mc.div_ceil(MR) * MR * kc]
        .chunks_exact_mut(MR * kc)
        .enumerate()
    {
        let rows = MR.min(mc - i * MR);
        let row = |r: usize| {
            a.ptr
                .offset((r0 + i * MR + r) as isize * a.rs + p0 as isize * a.cs)
        };
        if rows == MR && a.cs == 1 {
            // six contiguous rows, written in the panel's order (one group of 6 per column)
            let src: [&[f32]; MR] = std::array::from_fn(|r| std::slice::from_raw_parts(row(r), kc));
            for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                for (d, s) in dst.iter_mut().zip(&src) {
                    *d = s[p];
                }
            }
            continue;
        }
        for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
            for (r, d) in dst.iter_mut().enumerate() {
                *d = if r < rows {
                    *row(r).offset(p as isize * a.cs)
                } else {
                    0.0
                };
            }
        }
    }
}

/// Pack rows `p0 .. p0 + kc`, columns `c0 .. c0 + nc` of `b` into panels of [`NR`] columns:
/// panel `j` holds `kc` rows of 16 values (`b[p0 + p, c0 + 16j + c]` at `j·kc·16 + p·16 + c`),
/// columns past `nc` zero.
///
/// # Safety
/// The block lies inside `b`'s elements; `out` holds `nc` rounded up to 16, times `kc`, values.
unsafe fn pack_b(b: Mat<f32>, p0: usize, c0: usize, kc: usize, nc: usize, out: &mut [f32]) {
    for (j, panel) in out[..nc.div_ceil(NR) * NR * kc]
        .chunks_exact_mut(NR * kc)
        .enumerate()
    {
        let cols = NR.min(nc - j * NR);
        let at = |p: usize, c: usize| (p0 + p) as isize * b.rs + (c0 + j * NR + c) as isize * b.cs;
        if b.cs == 1 {
            // rows of b are contiguous: copy 16 (or fewer, zero padded) values per row
            for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let src = std::slice::from_raw_parts(b.ptr.offset(at(p, 0)), cols);
                dst[..cols].copy_from_slice(src);
                dst[cols..].fill(0.0);
            }
        } else {
            // columns contiguous (a transposed weight) or any strides: one column at a time
            for c in 0..NR {
                if c >= cols {
                    (0..kc).for_each(|p| panel[p * NR + c] = 0.0);
                    continue;
                }
                let col = b.ptr.offset(at(0, c));
                for p in 0..kc {
                    panel[p * NR + c] = *col.offset(p as isize * b.rs);
                }
            }
        }
    }
}

/// How the microkernel writes its block: `c = beta·acc + scale·c` where `keep`, else
/// `c = beta·acc`.
#[derive(Clone, Copy)]
struct Store {
    keep: bool,
    scale: f32,
    beta: f32,
}

/// The 6 × 16 microkernel: the product of one packed panel of `a` (kc × 6) and one of `b`
/// (kc × 16), written to the `tile.0` × `tile.1` block at `c` (row stride `ldc`) as `st` says.
/// A block of fewer rows (one row when decoding, the last rows of a product) runs
/// [`micro_rows`] for just those rows: with one row the six-row kernel would spend six times the
/// multiply-adds on each `b` value it streams.
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` holds kc·6 and `b` kc·16 values; `c` addresses tile.0 rows of
/// tile.1 writable values, row stride `ldc`.
#[cfg(target_arch = "x86_64")]
unsafe fn micro(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    tile: (usize, usize),
    st: Store,
) {
    match tile.0 {
        1 => micro_rows::<1>(kc, a, b, c, ldc, tile, st),
        2 => micro_rows::<2>(kc, a, b, c, ldc, tile, st),
        3 => micro_rows::<3>(kc, a, b, c, ldc, tile, st),
        4 => micro_rows::<4>(kc, a, b, c, ldc, tile, st),
        5 => micro_rows::<5>(kc, a, b, c, ldc, tile, st),
        _ => micro_rows::<MR>(kc, a, b, c, ldc, tile, st),
    }
}

/// [`micro`] for the first `R` (≤ 6) rows of the panel of `a`.
///
/// # Safety
/// As [`micro`], with tile.0 ≤ R.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_rows<const R: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    tile: (usize, usize),
    st: Store,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    // the output block is read and written after the loop: fetch it now, so that its cache
    // misses (rows 4 KiB apart, which the hardware prefetcher does not follow) overlap the FMAs
    for r in 0..tile.0 {
        let row = c.add(r * ldc) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(row);
        _mm_prefetch::<_MM_HINT_T0>(row.add(4 * NR - 4));
    }
    let step = |p: usize, lo: &mut [__m256; R], hi: &mut [__m256; R]| {
        let b0 = _mm256_loadu_ps(b.add(p * NR));
        let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
        for r in 0..R {
            let x = _mm256_broadcast_ss(&*a.add(p * MR + r));
            lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
            hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
        }
    };
    let mut p = 0;
    if R <= 2 {
        // few chains of dependent FMAs: a second set of accumulators for odd steps keeps the
        // FMA units busy (their latency is four times their issue interval)
        let mut lo2 = [_mm256_setzero_ps(); R];
        let mut hi2 = [_mm256_setzero_ps(); R];
        while p + 2 <= kc {
            step(p, &mut lo, &mut hi);
            step(p + 1, &mut lo2, &mut hi2);
            p += 2;
        }
        for r in 0..R {
            lo[r] = _mm256_add_ps(lo[r], lo2[r]);
            hi[r] = _mm256_add_ps(hi[r], hi2[r]);
        }
    }
    while p + 4 <= kc {
        step(p, &mut lo, &mut hi);
        step(p + 1, &mut lo, &mut hi);
        step(p + 2, &mut lo, &mut hi);
        step(p + 3, &mut lo, &mut hi);
        p += 4;
    }
    while p < kc {
        step(p, &mut lo, &mut hi);
        p += 1;
    }
    let beta = _mm256_set1_ps(st.beta);
    let scale = _mm256_set1_ps(st.scale);
    if tile == (R, NR) {
        for r in 0..R {
            let row = c.add(r * ldc);
            let (mut v0, mut v1) = (_mm256_mul_ps(lo[r], beta), _mm256_mul_ps(hi[r], beta));
            if st.keep {
                v0 = _mm256_fmadd_ps(_mm256_loadu_ps(row), scale, v0);
                v1 = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8)), scale, v1);
            }
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row.add(8), v1);
        }
        return;
    }
    let mut tmp = [0f32; MR * NR];
    for r in 0..R {
        _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR), lo[r]);
        _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR + 8), hi[r]);
    }
    for r in 0..tile.0 {
        for j in 0..tile.1 {
            let o = c.add(r * ldc + j);
            let v = st.beta * tmp[r * NR + j];
            *o = if st.keep { v + st.scale * *o } else { v };
        }
    }
}

/// The microkernel off x86-64 ([`has_avx2_fma`] is false there, so it is not called): plain
/// loops.
///
/// # Safety
/// As the x86-64 version, without the CPU features.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn micro(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    tile: (usize, usize),
    st: Store,
) {
    for r in 0..tile.0 {
        for j in 0..tile.1 {
            let acc: f32 = (0..kc)
                .map(|p| *a.add(p * MR + r) * *b.add(p * NR + j))
                .sum();
            let o = c.add(r * ldc + j);
            *o = if st.keep {
                st.beta * acc + st.scale * *o
            } else {
                st.beta * acc
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{has_avx2_fma, sgemm, sgemm_packed, Dst, Mat, PackedB};

    /// Packing keeps every value (unpack gives the matrix back) for one and several depth
    /// blocks and a partial last panel; a short or narrow `b` is refused; and the product over
    /// the panels from any 16-aligned first column, with beta ≠ 1 and an output read back with
    /// alpha, matches an f64 sum.
    #[test]
    fn packed_weights_round_trip_and_multiply_from_any_panel() {
        for (k, n) in [(1, 1), (5, 16), (300, 40), (600, 48)] {
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 24.0)
                .collect();
            let p = PackedB::pack(&b, k, n, n).expect("b holds k·n values");
            assert_eq!((p.k(), p.n()), (k, n));
            assert_eq!(p.unpack(), b, "k {k} n {n}: unpack gives other values");
            assert!(
                PackedB::pack(&b[1..], k, n, n).is_none(),
                "a short b is packed"
            );
            assert!(PackedB::pack(&b, k, n, n - 1).is_none(), "rows overlap");
            if !has_avx2_fma() {
                println!("skipped the products: this CPU has no AVX2 + FMA");
                continue;
            }
            let second_panel = if n > 16 { 16 } else { 0 };
            for (m, c0) in [(1, 0), (7, second_panel), (13, 0)] {
                let cols = n - c0;
                let a: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                    .collect();
                let c_in: Vec<f32> = (0..m * cols).map(|i| (i % 7) as f32).collect();
                let mut c = c_in.clone();
                let d = Dst {
                    ptr: c.as_mut_ptr(),
                    rs: cols,
                    read: true,
                    alpha: 0.5,
                    beta: -2.0,
                };
                let am = Mat {
                    ptr: a.as_ptr(),
                    rs: k as isize,
                    cs: 1,
                };
                // SAFETY: the CPU has AVX2 and FMA; a holds m·k values, c m·cols; c0 is a
                // multiple of 16 and c0 + cols = n
                unsafe { sgemm_packed((m, cols, k), d, am, &p, c0) };
                for r in 0..m {
                    for j in 0..cols {
                        let dot: f64 = (0..k)
                            .map(|q| a[r * k + q] as f64 * b[q * n + c0 + j] as f64)
                            .sum();
                        let want = -2.0 * dot + 0.5 * c_in[r * cols + j] as f64;
                        let got = c[r * cols + j] as f64;
                        let tol = 1e-5 * (1.0 + want.abs()) * (k as f64).sqrt();
                        assert!(
                            (got - want).abs() <= tol,
                            "m {m} k {k} n {n} c0 {c0}: c[{r}, {j}] = {got}, want {want}"
                        );
                    }
                }
            }
        }
    }

    /// Every shape class (edges of the 6 × 16 block, several depth blocks, more than one block
    /// of rows), with a, b in both layouts, beta ≠ 1 and an output read back with alpha,
    /// against an f64 sum.
    #[test]
    fn matches_an_f64_product_for_every_layout_and_edge() {
        if !has_avx2_fma() {
            println!("skipped: this CPU has no AVX2 + FMA");
            return;
        }
        let shapes = [
            (1, 1, 1),
            (7, 5, 17),
            (6, 16, 256),
            (13, 600, 33),
            (150, 40, 70),
        ];
        for (m, k, n) in shapes {
            for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
                for (read, alpha, beta) in [(false, 0.0, 1.0), (true, 0.5, -2.0)] {
                    let a: Vec<f32> = (0..m * k)
                        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                        .collect();
                    let b: Vec<f32> = (0..k * n)
                        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 24.0)
                        .collect();
                    // element (r, p) of a at r·rs + p·cs: row-major, or the transpose of a k × m
                    let (ars, acs) = if at { (1, m) } else { (k, 1) };
                    let (brs, bcs) = if bt { (1, k) } else { (n, 1) };
                    let c0: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32).collect();
                    let mut c = c0.clone();
                    let d = Dst {
                        ptr: c.as_mut_ptr(),
                        rs: n,
                        read,
                        alpha,
                        beta,
                    };
                    let am = Mat {
                        ptr: a.as_ptr(),
                        rs: ars as isize,
                        cs: acs as isize,
                    };
                    let bm = Mat {
                        ptr: b.as_ptr(),
                        rs: brs as isize,
                        cs: bcs as isize,
                    };
                    // SAFETY: the CPU has AVX2 and FMA; a, b, c hold m·k, k·n, m·n values
                    unsafe { sgemm((m, n, k), d, am, bm) };
                    for r in 0..m {
                        for j in 0..n {
                            let dot: f64 = (0..k)
                                .map(|p| a[r * ars + p * acs] as f64 * b[p * brs + j * bcs] as f64)
                                .sum();
                            let mut want = beta as f64 * dot;
                            if read {
                                want += alpha as f64 * c0[r * n + j] as f64;
                            }
                            let got = c[r * n + j] as f64;
                            let tol = 1e-5 * (1.0 + want.abs()) * (k as f64).sqrt();
                            assert!(
                                (got - want).abs() <= tol,
                                "m {m} k {k} n {n} a^T {at} b^T {bt} read {read}: c[{r}, {j}] = {got}, want {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
