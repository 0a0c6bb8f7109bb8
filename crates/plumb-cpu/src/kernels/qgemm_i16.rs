//! Quantized matrix × many activation rows (prefill) with the activations in 16-bit blocks (the
//! same quantization as `qdot_i16.rs`) and the block dots on AVX-512 VNNI `vpdpwssd`: 16 i32 lanes,
//! each adding two i16 × i16 products, so one instruction does 32 multiply-adds where an f32
//! FMA does 16, and it issues at least as often (`examples/dpbf16_probe.rs` on the build machine,
//! one core: `vpdpwssd` zmm 5.8–5.9 per ns, `vfmadd231ps` zmm 3.8–3.9).
//!
//! Layout: 16 weight columns sit in the vector lanes and an activation row's pair of values is
//! broadcast from its row (activations stay as quantized, row-major). Each task unpacks its
//! weight columns to i16 and transposes them, per block of 32, into `[pair][columns]` with a 16 × 16
//! transpose of 32-bit lanes in registers, once for all rows. A tile of R rows × 32 columns keeps
//! one i32 accumulator per (row, 16 columns) for the current block and one f32 accumulator for
//! the whole row: after each block the i32 sums (exact: |q_w| ≤ 128, |q_x| ≤ 32767, 32 terms
//! < 2³¹) are converted and scaled by the weight and activation scales (q4_1's offset adds
//! `m · Σx`), and the finished outputs are stored straight into the output rows.
//! (An earlier layout put 16 activation rows in the lanes; its results then needed a scalar
//! transpose into the output rows: 16% on top of the kernel's own time in `perf record` of
//! `PLUMB_BENCH_ONLY=llm-q4_1-prefill model_bench`.)
//!
//! Only where [`available`]; elsewhere `qmatmul.rs` dequantizes panels into the f32 gemm.

// the block helpers below serve the x86-64 kernels only
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

use super::qdot_i16::{quantize_i16, I16Row};
use super::qpack::QMat;
use plumb_core::DType;

/// Weight columns per vector (i32 lanes of a zmm register).
const LANES: usize = 16;
/// Weight columns per task: two vectors (12 i32 and 12 f32 accumulators for six rows: 24 of
/// the 32 registers).
const NCOLS: usize = 2 * LANES;
/// Activation rows per tile.
const ROWS: usize = 6;

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

/// Take a buffer of `len` zeros, reusing `v`'s allocation (fresh large allocations cost page
/// faults and kernel page clearing on every call: 13% of a SmolLM2 prefill before reuse).
fn zeroed<T: Copy + Default>(mut v: Vec<T>, len: usize) -> Vec<T> {
    v.clear();
    v.resize(len, T::default());
    v
}

/// out [rows, n] = x [rows, k] × wᵀ for quantized w [n, k] (stored row order or packed, see
/// `qpack.rs`). Only where [`available`]; `xs` finite, `k` a multiple of 32.
pub fn qgemm(xs: &[f32], w: QMat, rows: usize) -> Vec<f32> {
    let (n, k) = (w.n, w.k);
    let xq: Vec<I16Row> = xs.chunks_exact(k).map(quantize_i16).collect();
    // every element is written below
    let mut out = crate::storage::alloc_overwrite::<f32>(rows * n);
    let optr = crate::team::SyncPtr::new(&mut out);
    let tasks = n.div_ceil(NCOLS);
    crate::par::for_each(tasks, |task| {
        let j0 = task * NCOLS;
        let cols = NCOLS.min(n - j0);
        // SAFETY: available() checked AVX-512 F/BW and VNNI; w holds rows j0 .. j0 + cols of
        // k / 32 blocks, every row of xq k / 32 blocks; columns j0 .. j0 + cols of each of the
        // `rows` output rows lie inside out and are written by this task only.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx512::task(w, j0, cols, &xq, |r| optr.slice(r * n + j0, cols));
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (w, &xq, optr);
    });
    out
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use super::{zeroed, I16Row, QMat, LANES, NCOLS, ROWS};
    use plumb_core::DType;
    use std::arch::x86_64::*;

    /// A task's weight columns, per block: `[pair][NCOLS]` i16 pairs (q4_0 minus 8; columns past
    /// the end zero), and the columns' scales and offsets.
    struct Cols {
        q: Vec<i32>,
        d: Vec<f32>,
        m: Vec<f32>,
    }

    thread_local! {
        /// This thread's unpacked columns, kept between tasks.
        static COLS: std::cell::Cell<Option<Cols>> = const { std::cell::Cell::new(None) };
    }

    /// One weight block as 32 i16 in element order (16 pairs).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block_i16(dt: DType, blk: *const u8) -> __m512i {
        if dt == DType::Q8_0 {
            return _mm512_cvtepi8_epi16(_mm256_loadu_si256(blk.add(2) as _));
        }
        let m4 = _mm_set1_epi8(0x0f);
        let qs = _mm_loadu_si128(blk.add(if dt == DType::Q4_0 { 2 } else { 4 }) as _);
        let lo = _mm_and_si128(qs, m4);
        let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), m4);
        let v = _mm512_cvtepu8_epi16(_mm256_set_m128i(hi, lo));
        if dt == DType::Q4_0 {
            _mm512_sub_epi16(v, _mm512_set1_epi16(8))
        } else {
            v
        }
    }

    /// Transpose 16 vectors of 16 i32 lanes: `r[i]` lane `p` → `r[p]` lane `i`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose16(r: &mut [__m512i; 16]) {
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        // u[4i + j], 128-bit lane L: element 4L + j of rows 4i .. 4i + 3
        let mut u = [_mm512_setzero_si512(); 16];
        for i in 0..4 {
            u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
            u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
            u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
            u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
        }
        // out[4L + j] lane i = u[4i + j] lane L: a 4 × 4 transpose of 128-bit lanes
        for j in 0..4 {
            let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
            let x0 = _mm512_shuffle_i32x4::<0x44>(a, b);
            let x1 = _mm512_shuffle_i32x4::<0xEE>(a, b);
            let y0 = _mm512_shuffle_i32x4::<0x44>(c, d);
            let y1 = _mm512_shuffle_i32x4::<0xEE>(c, d);
            r[j] = _mm512_shuffle_i32x4::<0x88>(x0, y0);
            r[4 + j] = _mm512_shuffle_i32x4::<0xDD>(x0, y0);
            r[8 + j] = _mm512_shuffle_i32x4::<0x88>(x1, y1);
            r[12 + j] = _mm512_shuffle_i32x4::<0xDD>(x1, y1);
        }
    }

    /// One packed group's block `blk` into lanes `at ..` of `c` (block `b`): its words already
    /// hold a pair of values per row in each i32 lane (see `qpack.rs`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn packed_block(dt: DType, blk: *const u8, c: &mut Cols, b: usize, at: usize) {
        let pay = blk.add(if dt == DType::Q4_1 { 64 } else { 32 });
        let q = c.q.as_mut_ptr();
        let put = |p: usize, v: __m512i| {
            _mm512_storeu_si512(q.add((b * 16 + p) * NCOLS + at) as _, v);
        };
        // the stored kernels take q4_0 as nibble − 8 (see block_i16)
        let bias = _mm512_set1_epi16(if dt == DType::Q4_0 { 8 } else { 0 });
        let (nc, np) = crate::kernels::qpack::chunks(dt);
        for i in 0..nc {
            let v =
                crate::kernels::qpack::avx512::pairs(dt, _mm512_loadu_si512(pay.add(64 * i) as _));
            for (s, v) in v.iter().take(np).enumerate() {
                put(np * i + s, _mm512_sub_epi16(*v, bias));
            }
        }
        let scales = |o: usize| _mm512_cvtph_ps(_mm256_loadu_si256(blk.add(o) as _));
        _mm512_storeu_ps(c.d.as_mut_ptr().add(b * NCOLS + at), scales(0));
        if dt == DType::Q4_1 {
            _mm512_storeu_ps(c.m.as_mut_ptr().add(b * NCOLS + at), scales(32));
        }
    }

    /// Unpack weight rows `j0 .. j0 + cols` (`cols` ≤ NCOLS, `nb` blocks each) into the
    /// transposed layout.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn unpack(w: QMat, j0: usize, cols: usize, nb: usize) -> Cols {
        let (dt, rb) = (w.dt, w.row_bytes());
        let t = super::super::qdot_i16::f16_table();
        let bb = dt.block_bytes();
        let old = COLS.with(|c| c.take());
        let (q, d, m) = old.map_or_else(Default::default, |c| (c.q, c.d, c.m));
        let mut c = Cols {
            q: zeroed(q, nb * 16 * NCOLS),
            d: zeroed(d, nb * NCOLS),
            m: zeroed(m, nb * NCOLS),
        };
        let h = |p: *const u8| t[u16::from_le_bytes([*p, *p.add(1)]) as usize];
        for g in 0..cols.div_ceil(LANES) {
            let row0 = j0 + g * LANES;
            if row0 + LANES <= w.packed_rows() {
                let grp = w.group(row0 / LANES).as_ptr();
                for b in 0..nb {
                    packed_block(dt, grp.add(b * LANES * bb), &mut c, b, g * LANES);
                }
                continue;
            }
            let w = w.plain_rows(row0, (cols - g * LANES).min(LANES));
            for b in 0..nb {
                let mut r = [_mm512_setzero_si512(); 16];
                for (i, v) in r.iter_mut().enumerate() {
                    let j = g * LANES + i;
                    if j < cols {
                        let blk = w.as_ptr().add(i * rb + b * bb);
                        *v = block_i16(dt, blk);
                        c.d[b * NCOLS + j] = h(blk);
                        if dt == DType::Q4_1 {
                            c.m[b * NCOLS + j] = h(blk.add(2));
                        }
                    }
                }
                transpose16(&mut r);
                for (p, v) in r.iter().enumerate() {
                    let at = (b * 16 + p) * NCOLS + g * LANES;
                    _mm512_storeu_si512(c.q.as_mut_ptr().add(at) as _, *v);
                }
            }
        }
        c
    }

    /// Every output of weight columns `j0 .. j0 + cols` (rows of `w`) for every activation row
    /// in `x`, written into `out(row)` (that row's `cols` outputs).
    ///
    /// # Safety
    /// AVX-512 F/BW/VL and VNNI present; `j0` a multiple of NCOLS, `cols` ≤ NCOLS rows from
    /// `j0` inside `w`, whose rows have as many blocks as each row of `x`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn task<'o>(
        w: QMat,
        j0: usize,
        cols: usize,
        x: &[I16Row],
        out: impl Fn(usize) -> &'o mut [f32],
    ) {
        let Some(nb) = x.first().map(|r| r.d.len()) else {
            return;
        };
        let wc = unpack(w, j0, cols, nb);
        let min = w.dt == DType::Q4_1;
        // lanes of the two column vectors that exist
        let mask = |v: usize| -> __mmask16 {
            let have = cols.saturating_sub(v * LANES).min(LANES);
            ((1u32 << have) - 1) as __mmask16
        };
        let masks = [mask(0), mask(1)];
        let mut r0 = 0;
        while r0 < x.len() {
            let rs = ROWS.min(x.len() - r0);
            let mut f = [[_mm512_setzero_ps(); 2]; ROWS];
            macro_rules! go {
                ($r:literal) => {
                    kernel::<$r>(&x[r0..r0 + $r], &wc, nb, min, &mut f)
                };
            }
            match rs {
                6 => go!(6),
                5 => go!(5),
                4 => go!(4),
                3 => go!(3),
                2 => go!(2),
                _ => go!(1),
            }
            for (i, fr) in f.iter().enumerate().take(rs) {
                let o = out(r0 + i);
                for (v, &fv) in fr.iter().enumerate() {
                    if masks[v] != 0 {
                        _mm512_mask_storeu_ps(o.as_mut_ptr().add(v * LANES), masks[v], fv);
                    }
                }
            }
            r0 += rs;
        }
        COLS.with(|c| c.set(Some(wc)));
    }

    /// `acc += Σ pairs of a · b` with `vpdpwssd` itself: LLVM's generic x86-64 tuning rewrites the
    /// intrinsic into `vpmaddwd` + `vpaddd` (two instructions where one does; measured in this
    /// kernel with perf annotate), so it is written out here.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(in crate::kernels) unsafe fn dpwssd(acc: &mut __m512i, a: __m512i, b: __m512i) {
        std::arch::asm!(
            "vpdpwssd {acc}, {a}, {b}",
            acc = inout(zmm_reg) *acc,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack),
        );
    }

    /// R activation rows × the task's 32 columns over all `nb` blocks into `f[..R]`.
    #[inline]
    #[allow(clippy::needless_range_loop)] // r, v index register arrays and memory together
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn kernel<const R: usize>(
        x: &[I16Row],
        wc: &Cols,
        nb: usize,
        min: bool,
        f: &mut [[__m512; 2]; ROWS],
    ) {
        let mut xq = [std::ptr::null::<i32>(); R];
        for r in 0..R {
            xq[r] = x[r].q.as_ptr() as *const i32;
        }
        let wq = wc.q.as_ptr();
        let mut acc_f = [[_mm512_setzero_ps(); 2]; R];
        for b in 0..nb {
            let mut acc = [[_mm512_setzero_si512(); 2]; R];
            for p in 0..16 {
                let at = (b * 16 + p) * NCOLS;
                let w0 = _mm512_loadu_si512(wq.add(at) as _);
                let w1 = _mm512_loadu_si512(wq.add(at + LANES) as _);
                for r in 0..R {
                    let xb = _mm512_set1_epi32(*xq[r].add(b * 16 + p));
                    dpwssd(&mut acc[r][0], w0, xb);
                    dpwssd(&mut acc[r][1], w1, xb);
                }
            }
            let dw = [
                _mm512_loadu_ps(wc.d.as_ptr().add(b * NCOLS)),
                _mm512_loadu_ps(wc.d.as_ptr().add(b * NCOLS + LANES)),
            ];
            let mw = [
                _mm512_loadu_ps(wc.m.as_ptr().add(b * NCOLS)),
                _mm512_loadu_ps(wc.m.as_ptr().add(b * NCOLS + LANES)),
            ];
            for r in 0..R {
                let dx = _mm512_set1_ps(*x[r].d.get_unchecked(b));
                let sx = _mm512_set1_ps(*x[r].sum.get_unchecked(b));
                for v in 0..2 {
                    let t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][v]), dw[v]);
                    acc_f[r][v] = _mm512_fmadd_ps(t, dx, acc_f[r][v]);
                    if min {
                        acc_f[r][v] = _mm512_fmadd_ps(mw[v], sx, acc_f[r][v]);
                    }
                }
            }
        }
        f[..R].copy_from_slice(&acc_f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::quant;

    /// Every kind against the dequantized weights multiplied in f64, with row counts around the
    /// six-row tiles and column counts around the 16-column vectors and 32-column tasks (masked
    /// stores); bound: half a quantization step of each activation.
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
            for (rows, n) in [
                (8, 1),
                (16, 6),
                (17, 7),
                (7, 16),
                (13, 32),
                (33, 53),
                (40, 100),
            ] {
                let wf: Vec<f32> = (0..n * k).map(|_| r() * 3.0).collect();
                let x: Vec<f32> = (0..rows * k).map(|_| r() * 5.0).collect();
                let wb = quant::quantize(dt, &wf).unwrap();
                let deq = quant::dequantize(dt, &wb, n * k).unwrap();
                let packed = super::super::qpack::pack(dt, &wb, n, k);
                let out = qgemm(
                    &x,
                    QMat {
                        dt,
                        bytes: &wb,
                        n,
                        k,
                        packed: false,
                    },
                    rows,
                );
                let from_packed = qgemm(
                    &x,
                    QMat {
                        dt,
                        bytes: &packed,
                        n,
                        k,
                        packed: true,
                    },
                    rows,
                );
                assert_eq!(
                    out, from_packed,
                    "{dt} {rows}x{n}: packed weights give other sums"
                );
                let what = format!("{dt} {rows}x{n}");
                super::super::qdot_i16::assert_close_to_dequantized(&what, &x, &deq, &out, n, k);
            }
        }
    }
}
