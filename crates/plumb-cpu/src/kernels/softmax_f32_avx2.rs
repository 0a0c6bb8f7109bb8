//! `softmax_f32` over rows in AVX2 + FMA intrinsics, for CPUs that have them
//! ([`applies`](super::exp_f32_avx2::applies)).
//!
//! The exponential is [`plumb_core::math::exp_nonpos_f32_in`] with fused multiply-adds,
//! operation for operation, eight lanes at a time ([`exp8_nonpos_fused`]), so the results are
//! bit for bit those of the generic kernel in `softmax.rs` (a test checks it). What differs is
//! the code: under perf, the generic kernel compiled for AVX2 reloaded the polynomial's
//! constants and kept its 16 partial sums on the stack at every step. Here the constants stay in
//! registers and the sums in two of them: `bench_ops softmax` 1.15× on the AMD EPYC build
//! machine (8 alternating pairs, BENCHMARKS.md).

use super::exp_f32_avx2::{exp8_nonpos_fused, Consts};
use super::reduce::max_skipping_nan;
use plumb_core::math::{exp_nonpos_f32_in, Fused};
use std::arch::x86_64::*;

/// Softmax of consecutive rows of `len` of `i` into `o`, prefetching each next row during the
/// exponential pass as the generic kernel does. A row holding NaN or +∞, or all −∞, is all NaN.
///
/// Streaming the output past the caches (the exponentials in a scratch row in L1, the scaled
/// row written with non-temporal stores: 128 MiB of memory traffic for 4096 × 4096 instead of
/// 192) measured slower on the AMD build machine, 0.89× in 6 alternating pairs, and is not done.
///
/// # Safety
/// [`applies`](super::exp_f32_avx2::applies) returned true; `o` and `i` have the same
/// length, a multiple of `len`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax_rows(o: &mut [f32], i: &[f32], len: usize) {
    let k = Consts::new();
    for (r, out) in o.chunks_mut(len).enumerate() {
        let (x, next) = super::row_and_next(i, r, len);
        let m = max_skipping_nan(x);
        if !m.is_finite() {
            out.fill(f32::NAN);
            continue;
        }
        let sum = exp_row(x, m, out, next, &k);
        let inv = _mm256_set1_ps(1.0 / sum);
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: c holds 8 elements
            let p = c.as_mut_ptr();
            _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), inv));
        }
        for v in chunks.into_remainder() {
            *v *= 1.0 / sum;
        }
    }
}

/// `e = e^(x − m)` for a row (every x ≤ m), returning the sum as the generic kernel forms it:
/// 16 lanes, the tail added into the first ones, then summed in order.
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_row(x: &[f32], m: f32, e: &mut [f32], next: &[f32], k: &Consts) -> f32 {
    let mv = _mm256_set1_ps(m);
    let (mut s0, mut s1) = (k.zero, k.zero);
    let n16 = x.len() / 16 * 16;
    for c in (0..n16).step_by(16) {
        if let Some(p) = next.get(c) {
            super::prefetch(p);
        }
        // SAFETY: c + 16 ≤ n16 ≤ len elements of x and e
        let (xp, ep) = (x.as_ptr().add(c), e.as_mut_ptr().add(c));
        let e0 = exp8_nonpos_fused(_mm256_sub_ps(_mm256_loadu_ps(xp), mv), k);
        let e1 = exp8_nonpos_fused(_mm256_sub_ps(_mm256_loadu_ps(xp.add(8)), mv), k);
        _mm256_storeu_ps(ep, e0);
        _mm256_storeu_ps(ep.add(8), e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    let mut lanes = [0f32; 16];
    _mm256_storeu_ps(lanes.as_mut_ptr(), s0);
    _mm256_storeu_ps(lanes.as_mut_ptr().add(8), s1);
    for ((l, o), &v) in lanes.iter_mut().zip(&mut e[n16..]).zip(&x[n16..]) {
        let y = exp_nonpos_f32_in::<Fused>(v - m);
        *l += y;
        *o = y;
    }
    lanes.iter().fold(0f32, |a, &b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit for bit the generic kernel's results (its fused exponential, its order of sums) for
    /// rows of every tail length, with −∞ (masked), huge, tiny and NaN values among them.
    #[test]
    fn rows_equal_the_generic_kernel_bit_for_bit() {
        if !crate::kernels::exp_f32_avx2::applies() {
            eprintln!("skipped: this CPU has no AVX2 + FMA");
            return;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        for len in [1, 2, 7, 8, 15, 16, 17, 31, 33, 100, 1000] {
            let rows = 5;
            let mut x: Vec<f32> = (0..rows * len).map(|_| (next() - 0.5) * 40.0).collect();
            x[0] = f32::NEG_INFINITY; // a masked key
            let tiny = (len + 2) % x.len();
            x[tiny] = -1e30;
            if len > 4 {
                x[len + 1] = 88.0; // a row whose max is large
                x[2 * len + 3] = f32::NAN; // a row with a NaN
                x[3 * len..4 * len].fill(f32::NEG_INFINITY); // a fully masked row
            }
            let mut want = vec![0f32; x.len()];
            crate::kernels::softmax::softmax_rows(&mut want, &x, len, false);
            let mut got = vec![0f32; x.len()];
            // SAFETY: applies() is true; whole rows
            unsafe { softmax_rows(&mut got, &x, len) };
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "len {len}, element {j}: {g} against the generic {w}"
                );
            }
        }
    }
}
