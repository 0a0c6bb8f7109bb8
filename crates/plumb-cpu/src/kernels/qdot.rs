//! Block dot products for quantized matmul with few activation rows (decoding). Each task takes a
//! range of weight rows and dots them block by block with every activation row.
//!
//! How the activations enter the block dots (`PLUMB_CPU_QACT`):
//! - `i16` (the default where the CPU has AVX2 or AVX-512): finite activation rows are quantized to
//!   16-bit blocks and the block dots are exact integer sums (`qdot_i16.rs`); 4× the f32 path's
//!   speed on this machine, relative error ≤ 2⁻¹⁶ of each block's largest activation (SmolLM2-135M
//!   q4_1 logits: 7.6e-3 max abs error against the dequantized f32 model, vs 2.0e-5 with `f32`);
//! - `f32` (the default on other CPUs): weights are dequantized one block at a time into registers
//!   and dotted lane-wise with the f32 activations (vectorised per SIMD level);
//! - `q8`: 8-bit activation blocks (32 × i8 + an f32 scale), as llama.cpp does, with AVX2
//!   `vpmaddubsw` / `vpmaddwd` or a portable integer loop. About 0.5% relative error per matmul,
//!   which flipped SmolLM2-135M's near-tied first greedy token on "What is the capital of France?"
//!   (see BENCHMARKS.md), so only on request.
//!
//! Rows holding NaN/inf always use the f32 path, so non-finite values propagate.

use crate::par::zip_chunks_mut;
use plumb_core::DType;

#[inline(always)]
fn f16_le(b: &[u8], i: usize) -> f32 {
    super::f16_bits_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Dot of one quantized weight row with one f32 activation row (`xsum[b]` = Σ x over block b).
/// Lane-wise accumulation over the whole row (one reduction at the end) with fixed-size lanes so
/// the loops vectorise; compiled per SIMD level.
#[inline(always)]
fn dot_row_f32_body(dt: DType, wrow: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    match dt {
        DType::Q4_0 => dot_q4::<false>(wrow, x, xsum),
        DType::Q4_1 => dot_q4::<true>(wrow, x, xsum),
        _ => dot_q8(wrow, x),
    }
}

/// q4_0 (`MIN = false`: w = d·(q − 8)) and q4_1 (`MIN = true`: w = d·q + m) blocks.
#[inline(always)]
fn dot_q4<const MIN: bool>(wrow: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let bb = if MIN { 20 } else { 18 };
    let mut acc = [0f32; 16];
    let mut offset = 0f32;
    for ((blk, xb), &xs) in wrow.chunks_exact(bb).zip(x.chunks_exact(32)).zip(xsum) {
        let d = f16_le(blk, 0);
        let qs = &blk[bb - 16..bb];
        let (x0, x1) = xb.split_at(16);
        let mut t = [0f32; 16];
        for j in 0..16 {
            t[j] = (qs[j] & 0x0f) as f32 * x0[j] + (qs[j] >> 4) as f32 * x1[j];
        }
        for j in 0..16 {
            acc[j] += d * t[j];
        }
        offset += if MIN {
            f16_le(blk, 2) * xs
        } else {
            -8.0 * d * xs
        };
    }
    acc.iter().sum::<f32>() + offset
}

/// q8_0 blocks: w = d·q.
#[inline(always)]
fn dot_q8(wrow: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for (blk, xb) in wrow.chunks_exact(34).zip(x.chunks_exact(32)) {
        let d = f16_le(blk, 0);
        let qs = &blk[2..34];
        let (x0, x1) = xb.split_at(16);
        let mut t = [0f32; 16];
        for j in 0..16 {
            t[j] = (qs[j] as i8) as f32 * x0[j] + (qs[j + 16] as i8) as f32 * x1[j];
        }
        for j in 0..16 {
            acc[j] += d * t[j];
        }
    }
    acc.iter().sum::<f32>()
}

multiversion!(
    /// Dot of one quantized weight row with one f32 activation row (portable / AVX2 builds).
    fn dot_row_f32_auto[](dt: DType, wrow: &[u8], x: &[f32], xsum: &[f32]) -> f32 = dot_row_f32_body[]
);

/// Dot of one quantized weight row with one f32 activation row, on the best path this CPU has.
#[inline]
pub fn dot_row_f32(dt: DType, wrow: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() == super::simd::Level::V4 {
        let nb = (wrow.len() / dt.block_bytes())
            .min(x.len() / 32)
            .min(xsum.len());
        // SAFETY: level V4 means AVX-512 F/BW/VL and F16C; nb whole blocks of wrow, x and xsum
        // are in bounds.
        return unsafe {
            match dt {
                DType::Q4_0 => avx512::dot_q4::<false>(wrow, x, xsum, nb),
                DType::Q4_1 => avx512::dot_q4::<true>(wrow, x, xsum, nb),
                _ => avx512::dot_q8(wrow, x, nb),
            }
        };
    }
    dot_row_f32_auto(dt, wrow, x, xsum)
}

/// Dequantize one row of whole blocks into `out` (AVX-512 where present, else the reference
/// block decoder).
pub fn dequant_row(dt: DType, w: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() == super::simd::Level::V4
        && matches!(dt, DType::Q4_0 | DType::Q4_1 | DType::Q8_0)
    {
        let nb = (w.len() / dt.block_bytes()).min(out.len() / 32);
        // SAFETY: level V4 means AVX-512 F/BW and F16C; nb whole blocks fit w and out.
        unsafe { avx512::dequant(dt, w, out, nb) };
        return;
    }
    for (o, blk) in out
        .chunks_exact_mut(32)
        .zip(w.chunks_exact(dt.block_bytes()))
    {
        plumb_core::quant::dequantize_block(dt, blk, o);
    }
}

/// Whether [`dot4_f32`] has a kernel for `dt` on this CPU.
fn x4_path(dt: DType) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() == super::simd::Level::V4 {
        return matches!(dt, DType::Q4_0 | DType::Q4_1);
    }
    let _ = dt;
    false
}

/// Dots of four consecutive weight rows with one f32 activation row (only where [`x4_path`]).
fn dot4_f32(dt: DType, w: &[u8], row_bytes: usize, x: &[f32], xsum: &[f32]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if x4_path(dt) {
        let nb = (row_bytes / dt.block_bytes())
            .min(x.len() / 32)
            .min(xsum.len());
        if w.len() >= 4 * row_bytes {
            // SAFETY: x4_path checked AVX-512 and the dtype; w holds 4 rows of nb whole blocks,
            // x and xsum at least nb blocks.
            return unsafe {
                if dt == DType::Q4_1 {
                    avx512::dot_q4_x4::<true>(w, row_bytes, x, xsum, nb)
                } else {
                    avx512::dot_q4_x4::<false>(w, row_bytes, x, xsum, nb)
                }
            };
        }
    }
    let r = |i: usize| dot_row_f32(dt, &w[i * row_bytes..(i + 1) * row_bytes], x, xsum);
    [r(0), r(1), r(2), r(3)]
}

/// AVX-512 block dots with f32 activations: a block's 32 weights are widened to two vectors of
/// 16 f32, multiplied with the activations, and scaled into one of two accumulators (two chains
/// hide the add latency).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn f16_at(p: *const u8) -> f32 {
        let bits = u16::from_le_bytes([*p, *p.add(1)]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }

    /// The 32 nibbles of one q4 block's 16 bytes as floats (low nibbles = elements 0..16, high =
    /// 16..32). Each byte is widened to a 32-bit lane once; its nibbles become floats by a
    /// 16-entry table lookup (`vpermps` reads the low 4 bits of each index lane).
    #[inline(always)]
    unsafe fn q4_nibbles(q: *const u8) -> (__m512, __m512) {
        let table = _mm512_setr_ps(
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
        );
        let bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(q as *const __m128i));
        (
            _mm512_permutexvar_ps(bytes, table),
            _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table),
        )
    }

    /// Σ_j q_j·x_j of one q4 block's nibbles with activations (x0, x1), without its scale.
    #[inline(always)]
    unsafe fn q4_dot(q: *const u8, x0: __m512, x1: __m512) -> __m512 {
        let (lo, hi) = q4_nibbles(q);
        _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0))
    }

    /// The part of a q4 block's dot that does not depend on the nibbles: q4_1's min m·Σx, or
    /// q4_0's −8·d·Σx.
    #[inline(always)]
    unsafe fn q4_offset<const MIN: bool>(blk: *const u8, d: f32, xs: f32) -> f32 {
        if MIN {
            f16_at(blk.add(2)) * xs
        } else {
            -8.0 * d * xs
        }
    }

    /// [`q4_dot`] with the activations loaded from `x`.
    #[inline(always)]
    unsafe fn q4_block(q: *const u8, x: *const f32) -> __m512 {
        q4_dot(q, _mm512_loadu_ps(x), _mm512_loadu_ps(x.add(16)))
    }

    /// # Safety
    /// AVX-512 F/BW and F16C present; `nb` whole blocks in `wrow`, `x` (32 each) and `xsum`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
    pub unsafe fn dot_q4<const MIN: bool>(wrow: &[u8], x: &[f32], xsum: &[f32], nb: usize) -> f32 {
        let bb = if MIN { 20 } else { 18 };
        let (w, xp) = (wrow.as_ptr(), x.as_ptr());
        let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let (mut o0, mut o1) = (0f32, 0f32);
        let mut b = 0;
        while b + 2 <= nb {
            let (k0, k1) = (w.add(b * bb), w.add((b + 1) * bb));
            let (d0, d1) = (f16_at(k0), f16_at(k1));
            let t0 = q4_block(k0.add(bb - 16), xp.add(b * 32));
            let t1 = q4_block(k1.add(bb - 16), xp.add(b * 32 + 32));
            a0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(d0), a0);
            a1 = _mm512_fmadd_ps(t1, _mm512_set1_ps(d1), a1);
            o0 += q4_offset::<MIN>(k0, d0, xsum[b]);
            o1 += q4_offset::<MIN>(k1, d1, xsum[b + 1]);
            b += 2;
        }
        if b < nb {
            let k0 = w.add(b * bb);
            let d0 = f16_at(k0);
            let t0 = q4_block(k0.add(bb - 16), xp.add(b * 32));
            a0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(d0), a0);
            o0 += q4_offset::<MIN>(k0, d0, xsum[b]);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + (o0 + o1)
    }

    /// Four consecutive weight rows (`rb` bytes apart) against one activation row: the
    /// activations are loaded once per block for all four, and the four chains run in parallel.
    ///
    /// # Safety
    /// As [`dot_q4`]; `w` holds 4 rows of `rb` bytes, each with `nb` whole blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
    pub unsafe fn dot_q4_x4<const MIN: bool>(
        w: &[u8],
        rb: usize,
        x: &[f32],
        xsum: &[f32],
        nb: usize,
    ) -> [f32; 4] {
        let bb = if MIN { 20 } else { 18 };
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut off = [0f32; 4];
        for (b, &xs) in xsum[..nb].iter().enumerate() {
            let x0 = _mm512_loadu_ps(xp.add(b * 32));
            let x1 = _mm512_loadu_ps(xp.add(b * 32 + 16));
            for r in 0..4 {
                let blk = wp.add(r * rb + b * bb);
                let d = f16_at(blk);
                let t = q4_dot(blk.add(bb - 16), x0, x1);
                acc[r] = _mm512_fmadd_ps(t, _mm512_set1_ps(d), acc[r]);
                off[r] += q4_offset::<MIN>(blk, d, xs);
            }
        }
        [
            _mm512_reduce_add_ps(acc[0]) + off[0],
            _mm512_reduce_add_ps(acc[1]) + off[1],
            _mm512_reduce_add_ps(acc[2]) + off[2],
            _mm512_reduce_add_ps(acc[3]) + off[3],
        ]
    }

    /// Dequantize `nb` whole blocks of `w` (q4_0, q4_1 or q8_0) into `out` (32 floats each).
    ///
    /// # Safety
    /// AVX-512 F/BW and F16C present; `w` holds `nb` blocks of `dt`, `out` 32·nb floats.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
    pub unsafe fn dequant(dt: plumb_core::DType, w: &[u8], out: &mut [f32], nb: usize) {
        use plumb_core::DType;
        let bb = dt.block_bytes();
        let (wp, op) = (w.as_ptr(), out.as_mut_ptr());
        for b in 0..nb {
            let blk = wp.add(b * bb);
            let d = _mm512_set1_ps(f16_at(blk));
            let o = op.add(b * 32);
            let (lo, hi) = if dt == DType::Q8_0 {
                q8_values(blk.add(2))
            } else {
                q4_nibbles(blk.add(bb - 16))
            };
            let (lo, hi) = match dt {
                DType::Q4_1 => {
                    let m = _mm512_set1_ps(f16_at(blk.add(2)));
                    (_mm512_fmadd_ps(lo, d, m), _mm512_fmadd_ps(hi, d, m))
                }
                DType::Q4_0 => {
                    let eight = _mm512_set1_ps(8.0);
                    (
                        _mm512_mul_ps(_mm512_sub_ps(lo, eight), d),
                        _mm512_mul_ps(_mm512_sub_ps(hi, eight), d),
                    )
                }
                _ => (_mm512_mul_ps(lo, d), _mm512_mul_ps(hi, d)),
            };
            _mm512_storeu_ps(o, lo);
            _mm512_storeu_ps(o.add(16), hi);
        }
    }

    /// The 32 signed bytes of one q8_0 block as floats (elements 0..16, 16..32).
    #[inline(always)]
    unsafe fn q8_values(q: *const u8) -> (__m512, __m512) {
        let lo = _mm_loadu_si128(q as *const __m128i);
        let hi = _mm_loadu_si128(q.add(16) as *const __m128i);
        (
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)),
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)),
        )
    }

    /// Σ_j q_j·x_j of one q8_0 block's 32 signed bytes with `x`, without its scale.
    #[inline(always)]
    unsafe fn q8_block(q: *const u8, x: *const f32) -> __m512 {
        let (lo, hi) = q8_values(q);
        _mm512_fmadd_ps(
            hi,
            _mm512_loadu_ps(x.add(16)),
            _mm512_mul_ps(lo, _mm512_loadu_ps(x)),
        )
    }

    /// # Safety
    /// As [`dot_q4`], for q8_0 blocks of 34 bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
    pub unsafe fn dot_q8(wrow: &[u8], x: &[f32], nb: usize) -> f32 {
        let (w, xp) = (wrow.as_ptr(), x.as_ptr());
        let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut b = 0;
        while b + 2 <= nb {
            let (k0, k1) = (w.add(b * 34), w.add((b + 1) * 34));
            let t0 = q8_block(k0.add(2), xp.add(b * 32));
            let t1 = q8_block(k1.add(2), xp.add(b * 32 + 32));
            a0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(f16_at(k0)), a0);
            a1 = _mm512_fmadd_ps(t1, _mm512_set1_ps(f16_at(k1)), a1);
            b += 2;
        }
        if b < nb {
            let k0 = w.add(b * 34);
            let t0 = q8_block(k0.add(2), xp.add(b * 32));
            a0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(f16_at(k0)), a0);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(a0, a1))
    }
}

/// One activation block quantized to 8 bits: value ≈ d · q.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub struct Q8Block {
    pub qs: [i8; 32],
    pub d: f32,
    /// d · Σ q (the q4_1 min term needs it)
    pub s: f32,
}

/// Quantize a finite f32 row (a multiple of 32 long) to q8 blocks.
pub fn quantize_q8(x: &[f32]) -> Vec<Q8Block> {
    x.chunks_exact(32)
        .map(|c| {
            let amax = c.iter().fold(0f32, |a, &v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0i8; 32];
            let mut sum = 0i32;
            for (q, &v) in qs.iter_mut().zip(c) {
                *q = (v * id).round() as i8;
                sum += *q as i32;
            }
            Q8Block {
                qs,
                d,
                s: d * sum as f32,
            }
        })
        .collect()
}

/// Portable integer block dots of one weight row with one q8 activation row.
pub fn dot_row_q8_portable(dt: DType, wrow: &[u8], xq: &[Q8Block]) -> f32 {
    let bb = dt.block_bytes();
    let mut s = 0f32;
    for (blk, y) in wrow.chunks_exact(bb).zip(xq) {
        let dw = f16_le(blk, 0);
        s += match dt {
            DType::Q8_0 => {
                let mut acc = 0i32;
                for (&w, &q) in blk[2..34].iter().zip(&y.qs) {
                    acc += (w as i8) as i32 * q as i32;
                }
                dw * y.d * acc as f32
            }
            DType::Q4_0 | DType::Q4_1 => {
                let off = if dt == DType::Q4_0 { 2 } else { 4 };
                let bias = if dt == DType::Q4_0 { 8 } else { 0 };
                let mut acc = 0i32;
                for j in 0..16 {
                    let b = blk[off + j];
                    acc += ((b & 0x0f) as i32 - bias) * y.qs[j] as i32;
                    acc += ((b >> 4) as i32 - bias) * y.qs[j + 16] as i32;
                }
                let main = dw * y.d * acc as f32;
                if dt == DType::Q4_1 {
                    main + f16_le(blk, 2) * y.s
                } else {
                    main
                }
            }
            _ => 0.0,
        };
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Q8Block;
    use plumb_core::DType;
    use std::arch::x86_64::*;

    const Q4_0: u8 = 0;
    const Q4_1: u8 = 1;
    const Q8_0: u8 = 2;

    /// One block's contribution: (Σ q_w·q_x as f32 lanes scaled by d_w·d_x, the q4_1 min term).
    #[inline(always)]
    unsafe fn block<const KIND: u8>(blk: *const u8, y: &Q8Block) -> (__m256, __m256) {
        let yv = _mm256_load_si256(y.qs.as_ptr() as *const __m256i);
        let dw = f16_at(blk);
        let scale = _mm256_set1_ps(dw * y.d);
        let p16 = if KIND == Q8_0 {
            let w = _mm256_loadu_si256(blk.add(2) as *const __m256i);
            _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yv, w))
        } else {
            let off = if KIND == Q4_0 { 2 } else { 4 };
            let b = _mm_loadu_si128(blk.add(off) as *const __m128i);
            let both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
            let nib = _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
            if KIND == Q4_0 {
                let w = _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
                _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yv, w))
            } else {
                _mm256_maddubs_epi16(nib, yv)
            }
        };
        let p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
        let min = if KIND == Q4_1 {
            _mm256_set_ps(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f16_at(blk.add(2)) * y.s)
        } else {
            _mm256_setzero_ps()
        };
        (_mm256_mul_ps(_mm256_cvtepi32_ps(p32), scale), min)
    }

    /// Two blocks per step into independent accumulators (hides the FMA latency chain).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_kind<const KIND: u8>(wrow: &[u8], bb: usize, xq: &[Q8Block]) -> f32 {
        let nb = xq.len().min(wrow.len() / bb);
        let w = wrow.as_ptr();
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 2 <= nb {
            let (p0, m0) = block::<KIND>(w.add(i * bb), &xq[i]);
            let (p1, m1) = block::<KIND>(w.add((i + 1) * bb), &xq[i + 1]);
            a0 = _mm256_add_ps(a0, _mm256_add_ps(p0, m0));
            a1 = _mm256_add_ps(a1, _mm256_add_ps(p1, m1));
            i += 2;
        }
        if i < nb {
            let (p0, m0) = block::<KIND>(w.add(i * bb), &xq[i]);
            a0 = _mm256_add_ps(a0, _mm256_add_ps(p0, m0));
        }
        let acc = _mm256_add_ps(a0, a1);
        let h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        _mm_cvtss_f32(h)
    }

    /// f16 at `p` (little-endian) → f32 with F16C.
    #[inline(always)]
    unsafe fn f16_at(p: *const u8) -> f32 {
        let bits = u16::from_le_bytes([*p, *p.add(1)]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }

    /// AVX2 block dots (`vpmaddubsw` + `vpmaddwd`, f32 accumulation across blocks).
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `wrow` holds whole blocks of `dt`, `xq` as many blocks.
    pub unsafe fn dot_row(dt: DType, wrow: &[u8], xq: &[Q8Block]) -> f32 {
        let bb = dt.block_bytes();
        match dt {
            DType::Q4_0 => dot_kind::<Q4_0>(wrow, bb, xq),
            DType::Q4_1 => dot_kind::<Q4_1>(wrow, bb, xq),
            _ => dot_kind::<Q8_0>(wrow, bb, xq),
        }
    }
}

/// Dot of one weight row with one q8 activation row, on the best path this CPU has.
#[inline]
pub fn dot_row_q8(dt: DType, wrow: &[u8], xq: &[Q8Block]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() != super::simd::Level::Baseline {
        // SAFETY: level() ≥ V3 means AVX2, FMA and F16C are present; blocks are whole.
        return unsafe { avx2::dot_row(dt, wrow, xq) };
    }
    dot_row_q8_portable(dt, wrow, xq)
}

/// One activation row in the form its dot products need.
enum XRow<'a> {
    Q8(Vec<Q8Block>),
    F32(&'a [f32], Vec<f32>),
}

/// How activations enter the block dots (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    I16,
    F32,
    Q8,
}

/// `PLUMB_CPU_QACT` (`i16`, `f32` or `q8`); unset or unknown: `i16`, which falls back to `f32`
/// where the CPU lacks its kernels.
fn act() -> Act {
    static A: std::sync::OnceLock<Act> = std::sync::OnceLock::new();
    *A.get_or_init(|| match std::env::var("PLUMB_CPU_QACT").as_deref() {
        Ok("f32") => Act::F32,
        Ok("q8") => Act::Q8,
        _ => Act::I16,
    })
}

/// Whether activation rows `xs` go in as 16-bit blocks (`PLUMB_CPU_QACT` is `i16` or unset and
/// every value is finite) on a CPU with those kernels.
pub fn i16_activations(xs: &[f32]) -> bool {
    // a non-short-circuiting fold per chunk vectorises (`all` alone tested one value at a time:
    // 1.5% of a SmolLM2 prefill)
    act() == Act::I16
        && xs
            .chunks(4096)
            .all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()))
}

/// out [rows, n] = x [rows, k] × wᵀ for quantized w [n, k].
pub fn qmatmul_rows(xs: &[f32], wb: &[u8], dt: DType, rows: usize, n: usize, k: usize) -> Vec<f32> {
    let row_bytes = dt.storage_bytes(k);
    let q8 = act() == Act::Q8;
    if super::qdot_i16::available(dt) && i16_activations(xs) {
        return rows_i16(xs, wb, dt, rows, n, k);
    }
    let xrows: Vec<XRow> = xs
        .chunks_exact(k)
        .map(|x| {
            if q8 && x.iter().all(|v| v.is_finite()) {
                XRow::Q8(quantize_q8(x))
            } else {
                XRow::F32(x, x.chunks_exact(32).map(|c| c.iter().sum()).collect())
            }
        })
        .collect();
    // transposed result [n, rows], computed in parallel over weight rows
    let mut out_t = vec![0f32; n * rows];
    let per = 64;
    if let ([XRow::F32(x, xsum)], true) = (&xrows[..], x4_path(dt)) {
        // one activation row (decoding): four weight rows at a time
        zip_chunks_mut(&mut out_t, per, wb, row_bytes * per, |o, w| {
            let mut o4 = o.chunks_exact_mut(4);
            let mut w4 = w.chunks_exact(row_bytes * 4);
            for (o, w) in (&mut o4).zip(&mut w4) {
                o.copy_from_slice(&dot4_f32(dt, w, row_bytes, x, xsum));
            }
            for (o, wrow) in o4
                .into_remainder()
                .iter_mut()
                .zip(w4.remainder().chunks_exact(row_bytes))
            {
                *o = dot_row_f32(dt, wrow, x, xsum);
            }
        });
        return out_t;
    }
    zip_chunks_mut(&mut out_t, rows * per, wb, row_bytes * per, |o, w| {
        for (o, wrow) in o.chunks_mut(rows).zip(w.chunks_exact(row_bytes)) {
            for (o, xr) in o.iter_mut().zip(&xrows) {
                *o = match xr {
                    XRow::Q8(q) => dot_row_q8(dt, wrow, q),
                    XRow::F32(x, xsum) => dot_row_f32(dt, wrow, x, xsum),
                };
            }
        }
    });
    if rows == 1 {
        return out_t;
    }
    let mut out = vec![0f32; rows * n];
    for j in 0..n {
        for r in 0..rows {
            out[r * n + j] = out_t[j * rows + r];
        }
    }
    out
}

/// [`qmatmul_rows`] with the activations in 16-bit blocks (see `qdot_i16.rs`), in parallel over
/// bands of weight rows; each band is read once for all activation rows.
fn rows_i16(xs: &[f32], wb: &[u8], dt: DType, rows: usize, n: usize, k: usize) -> Vec<f32> {
    let row_bytes = dt.storage_bytes(k);
    let xq: Vec<_> = xs
        .chunks_exact(k)
        .map(super::qdot_i16::quantize_i16)
        .collect();
    // every element is written below
    let mut out = crate::storage::alloc_overwrite::<f32>(rows * n);
    let threads = crate::par::threads();
    // about eight bands per thread, whole groups of four rows
    let per = (n / (8 * threads)).clamp(16, 256) / 4 * 4;
    let bands = n.div_ceil(per);
    // out is [rows, n]: band j of every activation row is out[r·n + j·per ..], so the bands are
    // written through a raw pointer (disjoint per task).
    let optr = crate::team::SyncPtr::new(&mut out);
    crate::par::for_each(bands, |band| {
        let j0 = band * per;
        let len = per.min(n - j0);
        let w = &wb[j0 * row_bytes..(j0 + len) * row_bytes];
        for (r, x) in xq.iter().enumerate() {
            // SAFETY: columns j0 .. j0 + len of row r are inside out and written by this task
            // only.
            let o = unsafe { optr.slice(r * n + j0, len) };
            super::qdot_i16::dot_rows(dt, w, row_bytes, x, o);
        }
    });
    out
}
