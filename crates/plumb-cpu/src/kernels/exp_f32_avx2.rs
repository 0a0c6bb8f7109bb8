//! e^x for eight f32 lanes in AVX2 + FMA intrinsics, operation for operation as the scalar
//! functions of `plumb_core::math` (so bit for bit their results), with the polynomial's
//! constants broadcast once per call ([`Consts`]) rather than reloaded per vector. Used by
//! `softmax_f32_avx2.rs`.
//!
//! An exact gelu built the same way (erf_f32's polynomial, its separate-rounding exponential)
//! was bit for bit the generic one but no faster: in `bench_ops linear_gelu` (MiniLM's
//! intermediate layer) the activation kept about 20% of the product's time under perf, applied
//! after the whole block or in blocks of 144 × 64 straight after the microkernel, so it was not
//! kept.

use std::arch::x86_64::*;

/// Whether this CPU runs the AVX2 kernels built on these (softmax): AVX2 and FMA without
/// AVX-512, as the AVX2 matmul kernel (with AVX-512 the generic kernels compiled for it run; not
/// measured against these).
pub fn applies() -> bool {
    super::simd::level() == super::simd::Level::V3
}

/// Below this e^x is under the smallest normal f32 (as in `plumb_core::math`).
const EXP_LO: f32 = -87.33;

/// The constants of [`exp8_nonpos_fused`], broadcast once per call.
#[derive(Clone, Copy)]
pub struct Consts {
    pub lo: __m256,
    pub zero: __m256,
    pub log2e: __m256,
    pub magic: __m256,
    pub c1: __m256,
    pub c2: __m256,
    pub poly: [__m256; 6],
    pub one: __m256,
    pub bias: __m256i,
}

impl Consts {
    /// # Safety
    /// The CPU has AVX2 and FMA ([`applies`]).
    #[target_feature(enable = "avx2,fma")]
    pub fn new() -> Consts {
        let s = _mm256_set1_ps;
        Consts {
            lo: s(EXP_LO),
            zero: _mm256_setzero_ps(),
            log2e: s(std::f32::consts::LOG2_E),
            magic: s(12_582_912.0),
            c1: s(0.693_359_4),
            c2: s(-2.121_944_4e-4),
            poly: [
                s(1.987_569_1e-4),
                s(1.398_199_9e-3),
                s(8.333_452e-3),
                s(4.166_579_6e-2),
                s(1.666_666_5e-1),
                s(0.5),
            ],
            one: s(1.0),
            bias: _mm256_set1_epi32(127),
        }
    }
}

/// e^x for eight x ≤ 0 (positive x is taken as 0, below [`EXP_LO`] gives 0, NaN gives NaN): the
/// steps of `exp_nonpos_f32_in::<Fused>` in the same order.
///
/// # Safety
/// The CPU has AVX2 and FMA ([`applies`]).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn exp8_nonpos_fused(x: __m256, k: &Consts) -> __m256 {
    // max(lo, x) returns x where x is NaN, and min(0, ·) keeps it: NaN flows through
    let xc = _mm256_min_ps(k.zero, _mm256_max_ps(k.lo, x));
    let t = _mm256_fmadd_ps(xc, k.log2e, k.magic);
    let n = _mm256_sub_ps(t, k.magic);
    let ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(k.magic));
    let r = _mm256_fnmadd_ps(n, k.c2, _mm256_fnmadd_ps(n, k.c1, xc));
    let mut p = k.poly[0];
    for &c in &k.poly[1..] {
        p = _mm256_fmadd_ps(p, r, c);
    }
    let er = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), k.one);
    let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(ni, k.bias)));
    let y = _mm256_mul_ps(er, pow2);
    // x < lo (−∞ included) is 0; the compare is false for NaN, whose y is already NaN
    _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(x, k.lo), y)
}
