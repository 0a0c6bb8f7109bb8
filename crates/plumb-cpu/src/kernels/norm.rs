//! `layer_norm_{dtype}` and `rms_norm_{dtype}` over the last dim, accumulated in f32 for halves
//! (f64 for f64). Layer norm uses two passes (mean, then the centred sum of squares).

use super::reduce::sum_acc;
use super::{Acc, Float};
use crate::storage::contiguous;
use plumb_core::{Result, View};
use std::borrow::Cow;

/// Σ (x − c)² in the accumulator type, 16 lanes, prefetching `next` (the following row).
#[inline(always)]
fn sum_sq<T: Float>(row: &[T], c: T::A, next: &[T]) -> T::A {
    let mut lanes = [T::A::ZERO; 16];
    let chunks = row.chunks_exact(16);
    let rest = chunks.remainder();
    for (k, ch) in chunks.enumerate() {
        if let Some(p) = next.get(k * 16) {
            super::prefetch(p);
        }
        for j in 0..16 {
            let d = ch[j].to_acc() - c;
            lanes[j] += d * d;
        }
    }
    let mut s = T::A::ZERO;
    for &v in rest {
        let d = v.to_acc() - c;
        s += d * d;
    }
    lanes.iter().fold(s, |a, &v| a + v)
}

fn params<'a, T: Float>(op: &str, p: Option<View<'a>>) -> Result<Option<Cow<'a, [T]>>> {
    p.map(|v| contiguous::<T>(op, &v)).transpose()
}

/// Run `rows(out_rows, in_rows)` over bands of whole rows in parallel.
fn for_rows<T: Float>(src: &[T], len: usize, rows: impl Fn(&mut [T], &[T]) + Sync) -> Vec<T> {
    let mut out = crate::storage::alloc_overwrite::<T>(src.len());
    if len == 0 {
        return out;
    }
    let per = super::rows_per_task(len);
    crate::par::zip_chunks_mut(&mut out, len * per, src, len * per, rows);
    out
}

/// Layer norm of consecutive rows of `len` (named functions, not closures, so the row loops
/// are compiled inside the per-SIMD-level copies: a closure stayed a baseline-SSE2 call).
#[inline(always)]
fn layer_norm_body<T: Float>(
    o: &mut [T],
    i: &[T],
    len: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: T::A,
) {
    let n = T::A::from_f64(len as f64);
    for (r, out) in o.chunks_mut(len).enumerate() {
        let (row, next) = super::row_and_next(i, r, len);
        let mean = sum_acc(row) / n;
        let var = sum_sq(row, mean, next) / n;
        let rstd = T::A::ONE / (var + eps).sqrt();
        match (w, b) {
            (Some(w), Some(b)) => {
                for (((o, &v), &w), &b) in out.iter_mut().zip(row).zip(w).zip(b) {
                    *o = T::from_acc((v.to_acc() - mean) * rstd * w.to_acc() + b.to_acc());
                }
            }
            (Some(w), None) => {
                for ((o, &v), &w) in out.iter_mut().zip(row).zip(w) {
                    *o = T::from_acc((v.to_acc() - mean) * rstd * w.to_acc());
                }
            }
            (None, Some(b)) => {
                for ((o, &v), &b) in out.iter_mut().zip(row).zip(b) {
                    *o = T::from_acc((v.to_acc() - mean) * rstd + b.to_acc());
                }
            }
            (None, None) => {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = T::from_acc((v.to_acc() - mean) * rstd);
                }
            }
        }
    }
}

multiversion!(
    fn layer_norm_rows[T: Float](o: &mut [T], i: &[T], len: usize, w: Option<&[T]>, b: Option<&[T]>, eps: T::A) = layer_norm_body[T]
);

/// RMS norm of consecutive rows of `len`.
#[inline(always)]
fn rms_norm_body<T: Float>(o: &mut [T], i: &[T], len: usize, w: Option<&[T]>, eps: T::A) {
    let n = T::A::from_f64(len as f64);
    for (r, out) in o.chunks_mut(len).enumerate() {
        let (row, next) = super::row_and_next(i, r, len);
        let ms = sum_sq(row, T::A::ZERO, next) / n;
        let r = T::A::ONE / (ms + eps).sqrt();
        match w {
            Some(w) => {
                for ((o, &v), &w) in out.iter_mut().zip(row).zip(w) {
                    *o = T::from_acc(v.to_acc() * r * w.to_acc());
                }
            }
            None => {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = T::from_acc(v.to_acc() * r);
                }
            }
        }
    }
}

multiversion!(
    fn rms_norm_rows[T: Float](o: &mut [T], i: &[T], len: usize, w: Option<&[T]>, eps: T::A) = rms_norm_body[T]
);

/// `layer_norm_{f16,bf16,f32,f64}`: (x − mean) / sqrt(var + eps) · w + b.
pub fn layer_norm_float<T: Float>(
    x: &View,
    w: Option<View>,
    b: Option<View>,
    eps: f64,
) -> Result<Vec<T>> {
    let src = contiguous::<T>("layer_norm", x)?;
    let w = params::<T>("layer_norm", w)?;
    let b = params::<T>("layer_norm", b)?;
    let len = x.shape().last().copied().unwrap_or(1);
    let eps = T::A::from_f64(eps);
    let (w, b) = (w.as_deref(), b.as_deref());
    Ok(for_rows(&src, len, |o, i| {
        layer_norm_rows(o, i, len, w, b, eps)
    }))
}

/// `rms_norm_{f16,bf16,f32,f64}`: x / sqrt(mean(x²) + eps) · w.
pub fn rms_norm_float<T: Float>(x: &View, w: Option<View>, eps: f64) -> Result<Vec<T>> {
    let src = contiguous::<T>("rms_norm", x)?;
    let w = params::<T>("rms_norm", w)?;
    let len = x.shape().last().copied().unwrap_or(1);
    let eps = T::A::from_f64(eps);
    let w = w.as_deref();
    Ok(for_rows(&src, len, |o, i| rms_norm_rows(o, i, len, w, eps)))
}
