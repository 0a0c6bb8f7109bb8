//! `softmax_{dtype}` / `log_softmax_{dtype}` over the last dim: numerically stable (subtract
//! the row max), accumulated in f32 for halves. A row that holds a NaN or +inf, or is all −inf,
//! is all NaN, as in PyTorch.

use super::reduce::max_skipping_nan;
use super::{prefetch, Acc, Float};
use crate::storage::contiguous;
use plumb_core::math::MulAdd;
use plumb_core::{Result, View};

/// Softmax of one row into `out`, prefetching `next` (the following row) during its exponential
/// pass, one cache line per 16 elements, so the next row's max pass does not wait on memory.
#[inline(always)]
fn softmax_row_ahead<T: Float, M: MulAdd>(x: &[T], out: &mut [T], log: bool, next: &[T]) {
    // NaNs skipped: a NaN makes its exponential, the sum and so every output NaN
    let m = max_skipping_nan(x);
    if !m.is_finite() {
        out.fill(T::from_acc(T::A::NAN));
        return;
    }
    let mut lanes = [T::A::ZERO; 16];
    let n16 = x.len() / 16 * 16;
    if log {
        for c in x[..n16].chunks_exact(16) {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += (v.to_acc() - m).exp_nonpos::<M>();
            }
        }
        for (l, &v) in lanes.iter_mut().zip(&x[n16..]) {
            *l += (v.to_acc() - m).exp_nonpos::<M>();
        }
        let sum = lanes.iter().fold(T::A::ZERO, |a, &b| a + b);
        let ln_sum = sum.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = T::from_acc((v.to_acc() - m) - ln_sum);
        }
    } else {
        let (oh, ot) = out.split_at_mut(n16);
        for (c, (oc, xc)) in oh
            .chunks_exact_mut(16)
            .zip(x[..n16].chunks_exact(16))
            .enumerate()
        {
            if let Some(p) = next.get(c * 16) {
                prefetch(p);
            }
            for j in 0..16 {
                let e = (xc[j].to_acc() - m).exp_nonpos::<M>();
                lanes[j] += e;
                oc[j] = T::from_acc(e);
            }
        }
        for ((l, o), &v) in lanes.iter_mut().zip(ot.iter_mut()).zip(&x[n16..]) {
            let e = (v.to_acc() - m).exp_nonpos::<M>();
            *l += e;
            *o = T::from_acc(e);
        }
        let sum = lanes.iter().fold(T::A::ZERO, |a, &b| a + b);
        let inv = T::A::ONE / sum;
        if !T::IS_HALF {
            // f32/f64: rescale the stored exponentials
            for o in out.iter_mut() {
                *o = T::from_acc(o.to_acc() * inv);
            }
        } else {
            // halves: recompute from x so the result is rounded once
            for (o, &v) in out.iter_mut().zip(x) {
                *o = T::from_acc((v.to_acc() - m).exp_nonpos::<M>() * inv);
            }
        }
    }
}

/// `x ← e^(x − m)` over a row of accumulator values (every x ≤ m), returning their sum, in 16
/// lanes so it vectorises. Used by the attention kernels on their score rows.
#[inline(always)]
pub fn exp_sum_in_place<A: Acc, M: MulAdd>(row: &mut [A], m: A) -> A {
    let mut lanes = [A::ZERO; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c.iter_mut()) {
            *x = (*x - m).exp_nonpos::<M>();
            *l += *x;
        }
    }
    for (l, x) in lanes.iter_mut().zip(chunks.into_remainder()) {
        *x = (*x - m).exp_nonpos::<M>();
        *l += *x;
    }
    lanes.iter().fold(A::ZERO, |a, &b| a + b)
}

#[inline(always)]
fn softmax_rows_body<T: Float, M: MulAdd>(o: &mut [T], i: &[T], len: usize, log: bool) {
    for (r, o) in o.chunks_mut(len).enumerate() {
        let (row, next) = super::row_and_next(i, r, len);
        softmax_row_ahead::<T, M>(row, o, log, next);
    }
}

multiversion!(
    /// Softmax of consecutive rows of `len`, compiled for the CPU's SIMD level.
    pub(crate) fn softmax_rows[T: Float](o: &mut [T], i: &[T], len: usize, log: bool) = softmax_rows_body[T] + MulAdd
);

/// `softmax_{f16,bf16,f32,f64}` (and the log variant).
pub fn softmax_float<T: Float>(x: &View, log: bool) -> Result<Vec<T>> {
    let op = if log { "log_softmax" } else { "softmax" };
    let src = contiguous::<T>(op, x)?;
    let len = x.shape().last().copied().unwrap_or(1);
    if len == 0 {
        return Ok(crate::storage::alloc_overwrite::<T>(src.len()));
    }
    let per = super::rows_per_task(len);
    #[cfg(target_arch = "x86_64")]
    if !log
        && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && super::exp_f32_avx2::applies()
    {
        // T is f32: cow_to_f32 borrows and vec_from_f32 hands the same vector back
        let i = T::cow_to_f32(&src);
        let mut o = crate::storage::alloc_overwrite::<f32>(i.len());
        crate::par::zip_chunks_mut(&mut o, len * per, &i, len * per, |o, i| {
            // SAFETY: applies() checked AVX2 and FMA; the chunks are whole rows of len
            unsafe { super::softmax_f32_avx2::softmax_rows(o, i, len) }
        });
        return Ok(T::vec_from_f32(o));
    }
    let mut out = crate::storage::alloc_overwrite::<T>(src.len());
    crate::par::zip_chunks_mut(&mut out, len * per, &src, len * per, |o, i| {
        softmax_rows(o, i, len, log)
    });
    Ok(out)
}
