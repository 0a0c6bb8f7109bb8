//! Quantized matrix × many activation rows (prefill) with the activations in 16-bit blocks (the
//! same quantization as `qdot_i16.rs`) and the block dots on AVX-512 VNNI `vpdpwssd`: 16 i32 lanes,
//! each adding two i16 × i16 products, so one instruction does 32 multiply-adds where an f32
//! FMA does 16 (both issue twice per cycle on the build machine: `vpdpwssd` zmm 5.7, `vfmadd` zmm
//! 5.3 per ns on one core).
//!
//! Layout: 16 activation rows sit in the vector lanes and a weight column's pair of values is
//! broadcast, so the weights only need unpacking to i16 in element order (no transpose); the
//! activations are transposed once per call into `[row group][block][pair][16 rows]`.
//! A tile of RV·16 rows × NC columns keeps one i32 accumulator per (row vector, column) for the
//! current block and one f32 accumulator for the whole row: after each block of 32 values the i32
//! sums (exact: |q_w| ≤ 128, |q_x| ≤ 32767, 32 terms < 2³¹) are converted and scaled by the
//! activation and weight scales; q4_1's offset adds `m · Σx` per block.
//!
//! Only where [`available`]; elsewhere `qmatmul.rs` dequantizes panels into the f32 gemm.

// the block helpers below serve the x86-64 kernels only
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

use super::qdot_i16::{quantize_i16, I16Row};
use plumb_core::DType;

/// Rows per vector (i32 lanes of a zmm register).
const LANES: usize = 16;
/// Row vectors per tile.
const RV: usize = 2;
/// Weight columns per tile (RV·NC i32 and RV·NC f32 accumulators: 24 of the 32 registers).
const NC: usize = 6;
/// Weight columns per task (their unpacked values, NCOLS · k · 2 bytes, stay in L2). Small tasks
/// balance the two threads better; 12, 24 and 48 measured alike within this machine's noise
/// (SmolLM2 q4_1 prefill 705–770 tok/s, `PLUMB_BENCH_ONLY=llm-q4_1-prefill model_bench`).
const NCOLS: usize = 4 * NC;

/// Whether this CPU has the kernel for `dt` (AVX-512 F/BW and VNNI).
pub fn available(dt: DType) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::{level, Level};
        level() == Level::V4
            && std::arch::is_x86_feature_detected!("avx512vnni")
            && matches!(dt, DType::Q4_0 | DType::Q4_1 | DType::Q8_0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = dt;
        false
    }
}

/// The activations of one call: `[group][block][pair][16 rows]` i16 pairs, and per group and
/// block the 16 rows' scales and sums (rows past the end are zero).
struct Packed {
    q: Vec<i32>,
    d: Vec<f32>,
    sum: Vec<f32>,
    groups: usize,
    nb: usize,
}

/// Take a buffer of `len` zeros, reusing `v`'s allocation (fresh large allocations cost page
/// faults and kernel page clearing on every call: 13% of a SmolLM2 prefill before reuse).
fn zeroed<T: Copy + Default>(mut v: Vec<T>, len: usize) -> Vec<T> {
    v.clear();
    v.resize(len, T::default());
    v
}

thread_local! {
    /// The calling thread's packed activations, kept between calls.
    static PACKED: std::cell::Cell<Option<Packed>> = const { std::cell::Cell::new(None) };
}

fn pack_rows(rows: &[I16Row], nb: usize) -> Packed {
    let groups = rows.len().div_ceil(LANES);
    let old = PACKED.with(|c| c.take());
    let (q, d, sum) = old.map_or_else(Default::default, |p| (p.q, p.d, p.sum));
    let mut p = Packed {
        q: zeroed(q, groups * nb * 16 * LANES),
        d: zeroed(d, groups * nb * LANES),
        sum: zeroed(sum, groups * nb * LANES),
        groups,
        nb,
    };
    for (r, row) in rows.iter().enumerate() {
        let (g, lane) = (r / LANES, r % LANES);
        for b in 0..nb {
            let base = (g * nb + b) * 16 * LANES + lane;
            let blk = &row.q[b * 32..b * 32 + 32];
            for (pair, v) in blk.chunks_exact(2).enumerate() {
                // two i16 in one i32 lane, first value in the low half (vpdpwssd's order)
                p.q[base + pair * LANES] = (v[0] as u16 as u32 | (v[1] as u16 as u32) << 16) as i32;
            }
            p.d[(g * nb + b) * LANES + lane] = row.d[b];
            p.sum[(g * nb + b) * LANES + lane] = row.sum[b];
        }
    }
    p
}

/// out [rows, n] = x [rows, k] × wᵀ for quantized w [n, k] (`wb`, whole rows of `k / 32`
/// blocks). Only where [`available`]; `xs` finite, `k` a multiple of 32.
pub fn qgemm(xs: &[f32], wb: &[u8], dt: DType, rows: usize, n: usize, k: usize) -> Vec<f32> {
    let nb = k / 32;
    let xq: Vec<I16Row> = xs.chunks_exact(k).map(quantize_i16).collect();
    let xp = pack_rows(&xq, nb);
    let row_bytes = dt.storage_bytes(k);
    // every element is written below
    let mut out = crate::storage::alloc_overwrite::<f32>(rows * n);
    let optr = crate::team::SyncPtr::new(&mut out);
    let tasks = n.div_ceil(NCOLS);
    crate::team::for_each(tasks, rayon::current_num_threads(), &|task| {
        let j0 = task * NCOLS;
        let cols = NCOLS.min(n - j0);
        let w = &wb[j0 * row_bytes..(j0 + cols) * row_bytes];
        // SAFETY: available() checked AVX-512 F/BW and VNNI; w holds cols rows of nb blocks,
        // xp holds groups·nb blocks of 16 rows; columns j0 .. j0 + cols of each of the `rows`
        // output rows lie inside out and are written by this task only.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx512::task(dt, w, row_bytes, cols, &xp, rows, |r| {
                optr.slice(r * n + j0, cols)
            });
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (w, &xp, optr);
    });
    PACKED.with(|c| c.set(Some(xp)));
    out
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{zeroed, Packed, LANES, NC, RV};
    use plumb_core::DType;
    use std::arch::x86_64::*;

    /// Unpacked weight columns: values in element order as i16 (q4_0 minus 8), scale and offset
    /// per block.
    struct Cols {
        q: Vec<i16>,
        d: Vec<f32>,
        m: Vec<f32>,
    }

    thread_local! {
        /// This thread's unpacked columns, kept between tasks.
        static COLS: std::cell::Cell<Option<Cols>> = const { std::cell::Cell::new(None) };
    }

    /// Unpack `cols` weight rows of `nb` blocks each.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn unpack(dt: DType, w: &[u8], rb: usize, cols: usize, nb: usize) -> Cols {
        let t = super::super::qdot_i16::f16_table();
        let bb = dt.block_bytes();
        let old = COLS.with(|c| c.take());
        let (q, d, m) = old.map_or_else(Default::default, |c| (c.q, c.d, c.m));
        let mut c = Cols {
            q: zeroed(q, cols * nb * 32),
            d: zeroed(d, cols * nb),
            m: zeroed(m, cols * nb),
        };
        let m4 = _mm_set1_epi8(0x0f);
        let eight = _mm512_set1_epi16(8);
        for j in 0..cols {
            for b in 0..nb {
                let blk = w.as_ptr().add(j * rb + b * bb);
                let h = |o: usize| t[u16::from_le_bytes([*blk.add(o), *blk.add(o + 1)]) as usize];
                let v = match dt {
                    DType::Q8_0 => _mm512_cvtepi8_epi16(_mm256_loadu_si256(blk.add(2) as _)),
                    _ => {
                        let off = if dt == DType::Q4_0 { 2 } else { 4 };
                        let qs = _mm_loadu_si128(blk.add(off) as _);
                        let lo = _mm_and_si128(qs, m4);
                        let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), m4);
                        let v = _mm512_cvtepu8_epi16(_mm256_set_m128i(hi, lo));
                        if dt == DType::Q4_0 {
                            _mm512_sub_epi16(v, eight)
                        } else {
                            v
                        }
                    }
                };
                _mm512_storeu_si512(c.q.as_mut_ptr().add((j * nb + b) * 32) as _, v);
                c.d[j * nb + b] = h(0);
                if dt == DType::Q4_1 {
                    c.m[j * nb + b] = h(2);
                }
            }
        }
        c
    }

    /// Every output of `cols` weight columns (rows of `w`, `rb` bytes each) for all `rows`
    /// activation rows, written into `out(row)` (that row's `cols` outputs).
    ///
    /// # Safety
    /// AVX-512 F/BW/VL and VNNI present; `w` holds `cols` rows of `xp.nb` whole blocks of `dt`.
    pub unsafe fn task<'o>(
        dt: DType,
        w: &[u8],
        rb: usize,
        cols: usize,
        xp: &Packed,
        rows: usize,
        out: impl Fn(usize) -> &'o mut [f32],
    ) {
        let nb = xp.nb;
        let wc = unpack(dt, w, rb, cols, nb);
        let min = dt == DType::Q4_1;
        let mut g = 0;
        while g < xp.groups {
            let rv = RV.min(xp.groups - g);
            let mut c = 0;
            while c < cols {
                let nc = NC.min(cols - c);
                let mut tile = [[0f32; RV * LANES]; NC];
                macro_rules! go {
                    ($r:literal, $n:literal) => {
                        kernel::<$r, $n>(xp, g, &wc, c, nb, min, &mut tile)
                    };
                }
                match (rv, nc) {
                    (2, 6) => go!(2, 6),
                    (2, 5) => go!(2, 5),
                    (2, 4) => go!(2, 4),
                    (2, 3) => go!(2, 3),
                    (2, 2) => go!(2, 2),
                    (2, _) => go!(2, 1),
                    (_, 6) => go!(1, 6),
                    (_, 5) => go!(1, 5),
                    (_, 4) => go!(1, 4),
                    (_, 3) => go!(1, 3),
                    (_, 2) => go!(1, 2),
                    _ => go!(1, 1),
                }
                for ri in 0..(rv * LANES).min(rows - g * LANES) {
                    let o = &mut out(g * LANES + ri)[c..c + nc];
                    for (o, col) in o.iter_mut().zip(&tile) {
                        *o = col[ri];
                    }
                }
                c += nc;
            }
            g += rv;
        }
        COLS.with(|c| c.set(Some(wc)));
    }

    /// `acc += Σ pairs of a · b` with `vpdpwssd` itself: LLVM's generic x86-64 tuning rewrites the
    /// intrinsic into `vpmaddwd` + `vpaddd` (two instructions where one does; measured in this
    /// kernel with perf annotate), so it is written out here.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn dpwssd(acc: &mut __m512i, a: __m512i, b: __m512i) {
        std::arch::asm!(
            "vpdpwssd {acc}, {a}, {b}",
            acc = inout(zmm_reg) *acc,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack),
        );
    }

    /// R row vectors (from group `g`) × N columns (from `c`) over all `nb` blocks into `tile`.
    #[inline]
    #[allow(clippy::needless_range_loop)] // r, n index register arrays and memory together
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn kernel<const R: usize, const N: usize>(
        xp: &Packed,
        g: usize,
        wc: &Cols,
        c: usize,
        nb: usize,
        min: bool,
        tile: &mut [[f32; RV * LANES]; NC],
    ) {
        let gstride = nb * 16 * LANES;
        let xq = xp.q.as_ptr().add(g * gstride);
        let (xd, xs) = (
            xp.d.as_ptr().add(g * nb * LANES),
            xp.sum.as_ptr().add(g * nb * LANES),
        );
        let wq = wc.q.as_ptr().add(c * nb * 32) as *const i32;
        let (wd, wm) = (wc.d.as_ptr().add(c * nb), wc.m.as_ptr().add(c * nb));
        let mut f = [[_mm512_setzero_ps(); N]; R];
        for b in 0..nb {
            let mut acc = [[_mm512_setzero_si512(); N]; R];
            for p in 0..16 {
                let mut xv = [_mm512_setzero_si512(); R];
                for (r, v) in xv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(xq.add(r * gstride + (b * 16 + p) * LANES) as _);
                }
                for n in 0..N {
                    let wv = _mm512_set1_epi32(*wq.add(n * nb * 16 + b * 16 + p));
                    for r in 0..R {
                        dpwssd(&mut acc[r][n], xv[r], wv);
                    }
                }
            }
            for r in 0..R {
                let dx = _mm512_loadu_ps(xd.add(r * nb * LANES + b * LANES));
                let sx = _mm512_loadu_ps(xs.add(r * nb * LANES + b * LANES));
                for n in 0..N {
                    let t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][n]), dx);
                    f[r][n] = _mm512_fmadd_ps(t, _mm512_set1_ps(*wd.add(n * nb + b)), f[r][n]);
                    if min {
                        f[r][n] = _mm512_fmadd_ps(sx, _mm512_set1_ps(*wm.add(n * nb + b)), f[r][n]);
                    }
                }
            }
        }
        for r in 0..R {
            for n in 0..N {
                _mm512_storeu_ps(tile[n].as_mut_ptr().add(r * LANES), f[r][n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::quant;

    /// Every kind against the dequantized weights multiplied in f64, with row counts around the
    /// 16-row vectors and the two-vector tiles, and column counts around the 6-column tiles and
    /// the 48-column tasks; bound: half a quantization step of each activation.
    #[test]
    fn matches_dequantized_matmul() {
        if !available(DType::Q4_1) {
            eprintln!("skipped: this CPU has no AVX-512 VNNI (the prefill kernel); qmatmul.rs uses the f32 gemm there");
            return;
        }
        let k = 96;
        let mut rng = plumb_core::rng::SplitMix64::new(11);
        let mut r = || (rng.next_u64() % 20001) as f32 / 10000.0 - 1.0;
        for dt in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
            for (rows, n) in [(8, 1), (16, 6), (17, 7), (33, 53), (40, 100)] {
                let wf: Vec<f32> = (0..n * k).map(|_| r() * 3.0).collect();
                let x: Vec<f32> = (0..rows * k).map(|_| r() * 5.0).collect();
                let wb = quant::quantize(dt, &wf).unwrap();
                let deq = quant::dequantize(dt, &wb, n * k).unwrap();
                let out = qgemm(&x, &wb, dt, rows, n, k);
                assert_eq!(out.len(), rows * n);
                for i in 0..rows {
                    let xr = &x[i * k..(i + 1) * k];
                    let step: Vec<f64> = xr
                        .chunks(32)
                        .map(|c| c.iter().fold(0f32, |a, v| a.max(v.abs())) as f64 / 65534.0)
                        .collect();
                    for j in 0..n {
                        let w = &deq[j * k..(j + 1) * k];
                        let want: f64 = w.iter().zip(xr).map(|(&a, &b)| a as f64 * b as f64).sum();
                        let mag: f64 = w.iter().zip(xr).map(|(&a, &b)| (a * b).abs() as f64).sum();
                        let bound: f64 = w
                            .iter()
                            .enumerate()
                            .map(|(e, &a)| a.abs() as f64 * step[e / 32])
                            .sum();
                        let got = out[i * n + j] as f64;
                        assert!(
                            (got - want).abs() <= bound + 1e-6 * mag,
                            "{dt} {rows}x{n}: out[{i}][{j}] = {got}, want {want} (bound {bound})"
                        );
                    }
                }
            }
        }
    }
}
