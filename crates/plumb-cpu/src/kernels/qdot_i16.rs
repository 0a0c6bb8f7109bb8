//! Quantized matrix × few activation rows with the activations quantized to 16-bit blocks
//! (AVX-512 BW, or AVX2 with 256-bit vectors): `x ≈ d_b · q` per block of 32 with
//! `d_b = max|x| / 32767`, so each element keeps about 15 bits (relative error ≤ 2⁻¹⁶ of its
//! block's largest value; the weights' own 4- or 8-bit quantization is orders of magnitude
//! coarser). A block dot is then an exact integer sum:
//! one `vpmaddwd` for 32 weights, where the f32 path needs the nibbles widened to 32 floats.
//!
//! q4 blocks: the 16 bytes are broadcast to the four 128-bit lanes and `vpshufb` puts byte `j` in
//! the low half of word `j` (lanes 0–1) and again of word `16 + j` (lanes 2–3); a mask keeps the low
//! nibble in words 0–15 and the high nibble *in place* (×16) in words 16–31. So i32 lanes 8–15
//! carry 16× the high-nibble sums, scaled by 1/16 once after the loop (exact: a power of two).
//! Largest lane: 2 · 240 · 32767 < 2²⁴, so the conversion to f32 is exact as well.
//! q8_0 blocks: `vpmovsxbw` widens the 32 signed bytes to words. The AVX2 kernels widen each
//! half of a block to 16 words and take two `vpmaddwd` (SmolLM2 q4_1 decode with
//! `PLUMB_CPU_SIMD=avx2` on the build machine: 35.8 tok/s on the f32 path, 119 on these).
//!
//! On aarch64 the NEON kernels widen each block to four vectors of 8 words and multiply-add
//! them into 32-bit lanes (`smlal`/`smlal2`, part of the NEON baseline): eight products per lane,
//! at most 8 · 128 · 32767 < 2³¹ (the conversion to f32 may round q8_0 sums above 2²⁴ by one part
//! in 2²⁴, far below the activations' own step).
//!
//! Scales are f16 in the blocks; they go through a 65536-entry f32 table (a load, not the
//! conversion ports the vector work needs).

// the block helpers below serve the x86-64 and aarch64 kernels only
#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code, unused_variables)
)]

use plumb_core::DType;

/// One activation row in 16-bit blocks.
pub struct I16Row {
    /// 32 values per block, element order
    pub q: Vec<i16>,
    /// per-block scale
    pub d: Vec<f32>,
    /// per-block Σx of the f32 values (the q4 offset terms use it)
    pub sum: Vec<f32>,
}

/// Quantize a finite f32 row (a multiple of 32 long) to 16-bit blocks.
pub fn quantize_i16(x: &[f32]) -> I16Row {
    let nb = x.len() / 32;
    let mut row = I16Row {
        q: vec![0i16; nb * 32],
        d: vec![0f32; nb],
        sum: vec![0f32; nb],
    };
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() == super::simd::Level::V4 {
        // SAFETY: level V4 means AVX-512 F/BW/VL/DQ; x, q, d and sum hold nb blocks.
        unsafe { avx512::quantize(x, &mut row.q, &mut row.d, &mut row.sum, nb) };
        return row;
    }
    quantize_into(x, &mut row.q, &mut row.d, &mut row.sum);
    row
}

/// One block per step: scale from the largest magnitude, round to nearest even.
#[inline(always)]
fn quantize_body(x: &[f32], q: &mut [i16], d: &mut [f32], sum: &mut [f32]) {
    for (((c, q), d), sum) in x
        .chunks_exact(32)
        .zip(q.chunks_exact_mut(32))
        .zip(d.iter_mut())
        .zip(sum.iter_mut())
    {
        let amax = c.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let scale = amax / 32767.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (o, &v) in q.iter_mut().zip(c) {
            *o = (v * inv).round_ties_even().clamp(-32767.0, 32767.0) as i16;
        }
        *d = scale;
        *sum = c.iter().sum();
    }
}

multiversion!(
    fn quantize_into[](x: &[f32], q: &mut [i16], d: &mut [f32], sum: &mut [f32]) = quantize_body[]
);

/// Whether this CPU has the kernels below for `dt` (AVX-512 BW, or AVX2 with 256-bit vectors;
/// NEON on every aarch64 CPU).
pub fn available(dt: DType) -> bool {
    use super::simd::{level, Level};
    let simd = cfg!(target_arch = "aarch64")
        || (cfg!(target_arch = "x86_64") && level() != Level::Baseline);
    simd && matches!(dt, DType::Q4_0 | DType::Q4_1 | DType::Q8_0)
}

/// f16 bits → f32, for every bit pattern.
pub(super) fn f16_table() -> &'static [f32] {
    static T: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    T.get_or_init(|| (0..=u16::MAX).map(super::f16_bits_to_f32).collect())
}

/// `out[i]` = dot of weight row `i` (of `w`, `rb` bytes each) with `x`, for every row of
/// `w`. Only where [`available`] says so.
pub fn dot_rows(dt: DType, w: &[u8], rb: usize, x: &I16Row, out: &mut [f32]) {
    if available(dt) {
        let wide = super::simd::level() == super::simd::Level::V4;
        dot_rows_with(wide, dt, w, rb, x, out);
    }
}

/// [`dot_rows`] on the AVX-512 (`wide`) or the AVX2 kernels (on aarch64 NEON, whatever
/// `wide` says); only where [`available`].
#[allow(clippy::too_many_arguments)]
fn dot_rows_with(wide: bool, dt: DType, w: &[u8], rb: usize, x: &I16Row, out: &mut [f32]) {
    #[cfg(target_arch = "aarch64")]
    {
        let _ = wide;
        let nb = (rb / dt.block_bytes()).min(x.d.len());
        let rows = (w.len() / rb).min(out.len());
        let t = f16_table();
        // SAFETY: NEON is part of every aarch64 target; every row read lies inside w (rows whole
        // rows of rb bytes, nb blocks each), x holds nb blocks, out at least rows values.
        unsafe {
            match dt {
                DType::Q4_0 => neon::rows::<{ Q4_0 }>(w, rb, x, nb, rows, t, out),
                DType::Q4_1 => neon::rows::<{ Q4_1 }>(w, rb, x, nb, rows, t, out),
                _ => neon::rows::<{ Q8_0 }>(w, rb, x, nb, rows, t, out),
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        let nb = (rb / dt.block_bytes()).min(x.d.len());
        let rows = (w.len() / rb).min(out.len());
        let t = f16_table();
        // SAFETY: the caller checked the CPU's level (AVX-512 F/BW/VL/DQ for `wide`, else AVX2
        // and FMA); every row read lies inside w (rows whole rows of rb bytes, nb blocks each),
        // x holds nb blocks, out holds at least rows values.
        unsafe {
            match (wide, dt) {
                (true, DType::Q4_0) => avx512::rows::<{ Q4_0 }>(w, rb, x, nb, rows, t, out),
                (true, DType::Q4_1) => avx512::rows::<{ Q4_1 }>(w, rb, x, nb, rows, t, out),
                (true, _) => avx512::rows::<{ Q8_0 }>(w, rb, x, nb, rows, t, out),
                (false, DType::Q4_0) => avx2::rows::<{ Q4_0 }>(w, rb, x, nb, rows, t, out),
                (false, DType::Q4_1) => avx2::rows::<{ Q4_1 }>(w, rb, x, nb, rows, t, out),
                (false, _) => avx2::rows::<{ Q8_0 }>(w, rb, x, nb, rows, t, out),
            }
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = (wide, dt, w, rb, x, out);
}

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q8_0: u8 = 2;

/// Bytes of one block of KIND.
const fn block_bytes(kind: u8) -> usize {
    match kind {
        Q4_0 => 18,
        Q4_1 => 20,
        _ => 34,
    }
}
/// Groups of rows ahead whose blocks are prefetched: decoding streams every weight from memory
/// once per token, and without it the kernel waited on loads (SmolLM2-135M q4_1 decode 80 →
/// 110–115 tok/s on the 2-core build machine; 2, 4 and 8 groups measured alike).
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 4;

#[inline(always)]
unsafe fn f16_at(t: &[f32], p: *const u8) -> f32 {
    *t.get_unchecked(u16::from_le_bytes([*p, *p.add(1)]) as usize)
}

/// What a q4 block adds to its row's dot besides the nibble products: q4_1 `min · Σx`, q4_0
/// `−8·d · Σx` (the kernels multiply the unsigned nibbles); q8_0 nothing.
#[inline(always)]
unsafe fn offset_term<const KIND: u8>(t: &[f32], blk: *const u8, dw: f32, xs: f32) -> f32 {
    match KIND {
        Q4_1 => f16_at(t, blk.add(2)) * xs,
        Q4_0 => -8.0 * dw * xs,
        _ => 0.0,
    }
}

/// `pub unsafe fn rows::<KIND>` for a kernel module, driving its `group` (four rows at a time,
/// then one), compiled with the module's target features.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! rows_fn {
    ($features:literal) => {
        /// Every row of `w` (four at a time) into `out[i]`.
        ///
        /// # Safety
        /// The CPU has this module's features; `w` holds `rows` rows of `rb` bytes with `nb`
        /// whole blocks of KIND each; `x` holds `nb` blocks; `out` at least `rows` values.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        pub unsafe fn rows<const KIND: u8>(
            w: &[u8],
            rb: usize,
            x: &I16Row,
            nb: usize,
            rows: usize,
            t: &[f32],
            out: &mut [f32],
        ) {
            let wp = w.as_ptr();
            let mut i = 0;
            while i + 4 <= rows {
                let v = group::<KIND, 4>(wp.add(i * rb), rb, x, nb, t);
                for (r, v) in v.into_iter().enumerate() {
                    out[i + r] = v;
                }
                i += 4;
            }
            while i < rows {
                out[i] = group::<KIND, 1>(wp.add(i * rb), rb, x, nb, t)[0];
                i += 1;
            }
        }
    };
}

/// AVX2: each q4 block's nibbles widened to two vectors of 16 words (low nibbles = elements
/// 0–15, high = 16–31), two `vpmaddwd` per block; q8_0 widened with `vpmovsxbw`.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{block_bytes, f16_at, offset_term, I16Row, PREFETCH, Q4_0, Q8_0};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn group<const KIND: u8, const R: usize>(
        w: *const u8,
        rb: usize,
        x: &I16Row,
        nb: usize,
        t: &[f32],
    ) -> [f32; R] {
        let bb = block_bytes(KIND);
        let m4 = _mm_set1_epi8(0x0f);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut off = [0f32; R];
        for b in 0..nb {
            let xp = x.q.as_ptr().add(b * 32) as *const __m256i;
            let (x0, x1) = (_mm256_loadu_si256(xp), _mm256_loadu_si256(xp.add(1)));
            let dx = _mm256_set1_ps(*x.d.get_unchecked(b));
            let xs = *x.sum.get_unchecked(b);
            for r in 0..R {
                let blk = w.add(r * rb + b * bb);
                _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH * R * rb) as *const i8);
                let dw = f16_at(t, blk);
                let (w0, w1) = if KIND == Q8_0 {
                    let q = blk.add(2) as *const __m128i;
                    (
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(q)),
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(q.add(1))),
                    )
                } else {
                    let o = if KIND == Q4_0 { 2 } else { 4 };
                    let q = _mm_loadu_si128(blk.add(o) as *const __m128i);
                    (
                        _mm256_cvtepu8_epi16(_mm_and_si128(q, m4)),
                        _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(q, 4), m4)),
                    )
                };
                let p = _mm256_add_epi32(_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1));
                let f = _mm256_cvtepi32_ps(p);
                acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(f, _mm256_set1_ps(dw)), dx, acc[r]);
                if KIND != Q8_0 {
                    off[r] += offset_term::<KIND>(t, blk, dw, xs);
                }
            }
        }
        let mut out = [0f32; R];
        for r in 0..R {
            let h = _mm_add_ps(
                _mm256_castps256_ps128(acc[r]),
                _mm256_extractf128_ps(acc[r], 1),
            );
            let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            out[r] = _mm_cvtss_f32(h) + off[r];
        }
        out
    }

    rows_fn!("avx2,fma");
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{block_bytes, f16_at, offset_term, I16Row, PREFETCH, Q4_0, Q8_0};
    use std::arch::x86_64::*;

    /// `vpshufb` control: word j of lanes 0–1 and word 16 + j of lanes 2–3 get byte j.
    static SPREAD: [i8; 64] = {
        let mut c = [-128i8; 64];
        let mut lane = 0;
        while lane < 4 {
            let mut j = 0;
            while j < 8 {
                c[lane * 16 + 2 * j] = ((lane % 2) * 8 + j) as i8;
                j += 1;
            }
            lane += 1;
        }
        c
    };
    /// Low nibble in words 0–15, high nibble (in place) in words 16–31.
    static NIBBLES: [u16; 32] = {
        let mut m = [0x0fu16; 32];
        let mut j = 16;
        while j < 32 {
            m[j] = 0xf0;
            j += 1;
        }
        m
    };

    /// Σ q_w·q_x of one block as 16 i32 lanes converted to f32 (q4: lanes 8–15 at 16×).
    #[inline(always)]
    unsafe fn block<const KIND: u8>(
        blk: *const u8,
        xv: __m512i,
        spread: __m512i,
        nib: __m512i,
    ) -> __m512 {
        let w = if KIND == Q8_0 {
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(blk.add(2) as *const __m256i))
        } else {
            let off = if KIND == Q4_0 { 2 } else { 4 };
            let b = _mm512_broadcast_i32x4(_mm_loadu_si128(blk.add(off) as *const __m128i));
            _mm512_and_si512(_mm512_shuffle_epi8(b, spread), nib)
        };
        _mm512_cvtepi32_ps(_mm512_madd_epi16(w, xv))
    }

    /// R consecutive weight rows against x.
    #[inline(always)]
    unsafe fn group<const KIND: u8, const R: usize>(
        w: *const u8,
        rb: usize,
        x: &I16Row,
        nb: usize,
        t: &[f32],
    ) -> [f32; R] {
        let bb = block_bytes(KIND);
        let spread = _mm512_loadu_si512(SPREAD.as_ptr() as *const _);
        let nib = _mm512_loadu_si512(NIBBLES.as_ptr() as *const _);
        let mut acc = [_mm512_setzero_ps(); R];
        let mut off = [0f32; R];
        for b in 0..nb {
            let xv = _mm512_loadu_si512(x.q.as_ptr().add(b * 32) as *const _);
            let dx = _mm512_set1_ps(*x.d.get_unchecked(b));
            let xs = *x.sum.get_unchecked(b);
            for r in 0..R {
                let blk = w.add(r * rb + b * bb);
                if PREFETCH > 0 {
                    _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH * R * rb) as *const i8);
                }
                let dw = f16_at(t, blk);
                let f = block::<KIND>(blk, xv, spread, nib);
                acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(f, _mm512_set1_ps(dw)), dx, acc[r]);
                if KIND != Q8_0 {
                    off[r] += offset_term::<KIND>(t, blk, dw, xs);
                }
            }
        }
        let lanes = if KIND == Q8_0 {
            _mm512_set1_ps(1.0)
        } else {
            let (one, sixteenth) = (_mm256_set1_ps(1.0), _mm256_set1_ps(1.0 / 16.0));
            _mm512_insertf32x8(_mm512_castps256_ps512(one), sixteenth, 1)
        };
        let mut out = [0f32; R];
        for r in 0..R {
            out[r] = _mm512_reduce_add_ps(_mm512_mul_ps(acc[r], lanes)) + off[r];
        }
        out
    }

    /// [`super::quantize_body`] with intrinsics: `vcvtps2dq` rounds to nearest even (the default
    /// MXCSR mode) and `vpmovsdw` packs to i16 with saturation.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL/DQ present; `x` and `q` hold `nb`·32 elements, `d` and `sum` `nb`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
    pub unsafe fn quantize(x: &[f32], q: &mut [i16], d: &mut [f32], sum: &mut [f32], nb: usize) {
        let (xp, qp) = (x.as_ptr(), q.as_mut_ptr());
        for b in 0..nb {
            let (a0, a1) = (
                _mm512_loadu_ps(xp.add(b * 32)),
                _mm512_loadu_ps(xp.add(b * 32 + 16)),
            );
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
            let scale = amax / 32767.0;
            let inv = _mm512_set1_ps(if scale > 0.0 { 1.0 / scale } else { 0.0 });
            let q0 = _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(a0, inv)));
            let q1 = _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(a1, inv)));
            _mm256_storeu_si256(qp.add(b * 32) as *mut __m256i, q0);
            _mm256_storeu_si256(qp.add(b * 32 + 16) as *mut __m256i, q1);
            *d.get_unchecked_mut(b) = scale;
            *sum.get_unchecked_mut(b) = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        }
    }

    rows_fn!("avx512f,avx512bw,avx512vl,avx512dq,fma");
}

/// NEON: a q4 block's 16 bytes split into low and high nibbles (elements 0–15 and 16–31) and
/// widened to four vectors of 8 words; q8_0 widened with `sxtl`. Four `smlal` pairs per block.
#[cfg(target_arch = "aarch64")]
mod neon {
    use super::{block_bytes, f16_at, offset_term, I16Row, Q4_0, Q8_0};
    use std::arch::aarch64::*;

    /// Σ q_w·q_x of one block in four i32 lanes.
    #[inline(always)]
    unsafe fn block<const KIND: u8>(blk: *const u8, x: &[int16x8_t; 4]) -> int32x4_t {
        let w: [int16x8_t; 4] = if KIND == Q8_0 {
            let a = vld1q_s8(blk.add(2) as *const i8);
            let b = vld1q_s8(blk.add(18) as *const i8);
            [
                vmovl_s8(vget_low_s8(a)),
                vmovl_high_s8(a),
                vmovl_s8(vget_low_s8(b)),
                vmovl_high_s8(b),
            ]
        } else {
            let q = vld1q_u8(blk.add(if KIND == Q4_0 { 2 } else { 4 }));
            let lo = vandq_u8(q, vdupq_n_u8(0x0f));
            let hi = vshrq_n_u8::<4>(q);
            [
                vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(lo))),
                vreinterpretq_s16_u16(vmovl_high_u8(lo)),
                vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(hi))),
                vreinterpretq_s16_u16(vmovl_high_u8(hi)),
            ]
        };
        let mut acc = vmull_s16(vget_low_s16(w[0]), vget_low_s16(x[0]));
        acc = vmlal_high_s16(acc, w[0], x[0]);
        for i in 1..4 {
            acc = vmlal_s16(acc, vget_low_s16(w[i]), vget_low_s16(x[i]));
            acc = vmlal_high_s16(acc, w[i], x[i]);
        }
        acc
    }

    /// R consecutive weight rows against x.
    #[inline(always)]
    unsafe fn group<const KIND: u8, const R: usize>(
        w: *const u8,
        rb: usize,
        x: &I16Row,
        nb: usize,
        t: &[f32],
    ) -> [f32; R] {
        let bb = block_bytes(KIND);
        let mut acc = [vdupq_n_f32(0.0); R];
        let mut off = [0f32; R];
        for b in 0..nb {
            let xp = x.q.as_ptr().add(b * 32);
            let xv = [
                vld1q_s16(xp),
                vld1q_s16(xp.add(8)),
                vld1q_s16(xp.add(16)),
                vld1q_s16(xp.add(24)),
            ];
            let dx = *x.d.get_unchecked(b);
            let xs = *x.sum.get_unchecked(b);
            for r in 0..R {
                let blk = w.add(r * rb + b * bb);
                let dw = f16_at(t, blk);
                let p = vcvtq_f32_s32(block::<KIND>(blk, &xv));
                acc[r] = vfmaq_f32(acc[r], p, vdupq_n_f32(dw * dx));
                if KIND != Q8_0 {
                    off[r] += offset_term::<KIND>(t, blk, dw, xs);
                }
            }
        }
        let mut out = [0f32; R];
        for r in 0..R {
            out[r] = vaddvq_f32(acc[r]) + off[r];
        }
        out
    }

    rows_fn!("neon");
}

/// Test check shared by the 16-bit block kernels: `out` [rows, n] against x [rows, k] × deqᵀ
/// (the exactly dequantized weights) in f64. Each activation may be off by half a step of its
/// block (the block's max / 65534), so the bound is Σ |w| · step, plus 1e-6 of Σ |w·x|.
#[cfg(test)]
pub(super) fn assert_close_to_dequantized(
    what: &str,
    x: &[f32],
    deq: &[f32],
    out: &[f32],
    n: usize,
    k: usize,
) {
    let rows = x.len() / k;
    assert_eq!(out.len(), rows * n, "{what}: output length");
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
                "{what}: out[{i}][{j}] = {got}, want {want} (bound {bound})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::quant;

    /// The AVX-512 quantizer and the portable one agree (the scale exactly, values within one
    /// step: the portable path may round a product the other way after its own multiply).
    #[test]
    fn quantizers_agree() {
        let mut rng = plumb_core::rng::SplitMix64::new(3);
        let mut x: Vec<f32> = (0..320)
            .map(|_| (rng.next_u64() % 2001) as f32 / 100.0 - 10.0)
            .collect();
        x[40..72].fill(0.0); // an all-zero block
        let a = quantize_i16(&x);
        let (mut q, mut d, mut s) = (vec![0i16; 320], vec![0f32; 10], vec![0f32; 10]);
        quantize_into(&x, &mut q, &mut d, &mut s);
        assert_eq!(a.d, d);
        assert!(
            a.q.iter().zip(&q).all(|(u, v)| (u - v).abs() <= 1),
            "{:?}",
            &a.q[..8]
        );
        assert!(a
            .sum
            .iter()
            .zip(&s)
            .all(|(u, v)| (u - v).abs() <= 1e-4 * (1.0 + v.abs())));
        assert!(a.q[40..72].iter().all(|&v| v == 0));
    }

    /// Every kind against the dequantized weights dotted in f64, for 1–9 rows (the x4 groups and
    /// the single-row tail).
    #[test]
    fn matches_dequantized_dot() {
        if !available(DType::Q4_1) {
            eprintln!("skipped: this CPU has neither AVX2 nor AVX-512 (the 16-bit kernels)");
            return;
        }
        let mut kernels = vec![false]; // AVX2 (NEON on aarch64)
        if crate::kernels::simd::level() == crate::kernels::simd::Level::V4 {
            kernels.push(true);
        } else if cfg!(target_arch = "x86_64") {
            eprintln!("AVX-512 kernels skipped: this CPU has no AVX-512 BW");
        }
        let k = 96;
        let mut rng = plumb_core::rng::SplitMix64::new(7);
        let mut r = || (rng.next_u64() % 20001) as f32 / 10000.0 - 1.0;
        for dt in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
            for n in 1..10 {
                let wf: Vec<f32> = (0..n * k).map(|_| r() * 3.0).collect();
                let x: Vec<f32> = (0..k).map(|_| r() * 5.0).collect();
                let wb = quant::quantize(dt, &wf).unwrap();
                let deq = quant::dequantize(dt, &wb, n * k).unwrap();
                let rb = dt.storage_bytes(k);
                for &wide in &kernels {
                    let mut out = vec![0f32; n];
                    dot_rows_with(wide, dt, &wb, rb, &quantize_i16(&x), &mut out);
                    let what = format!("{dt} n={n} (avx512: {wide})");
                    assert_close_to_dequantized(&what, &x, &deq, &out, n, k);
                }
            }
        }
    }
}
