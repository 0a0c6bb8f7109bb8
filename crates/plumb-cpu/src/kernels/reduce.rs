//! `{sum,mean,max,min,argmax}_{dtype}` over one dim. Floats accumulate in their accumulator type
//! (f32 for halves, f64 for f64); max/min propagate NaN; argmax returns the first maximum (a NaN
//! counts as the maximum, like PyTorch). Integer sums wrap.

use super::unary::IntElem;
use super::{Acc, Float};
use crate::storage::{contiguous, Elem};
use plumb_core::{ReduceOp, Result, View};

/// (outer, len, inner) of a reduction over `dim` of `shape`.
pub fn split_dims(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// Sum of a slice in the accumulator type with 16 independent lanes (vectorises, and keeps the
/// rounding error of long rows small).
#[inline(always)]
pub fn sum_acc<T: Float>(x: &[T]) -> T::A {
    let mut lanes = [T::A::ZERO; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..16 {
            lanes[j] += c[j].to_acc();
        }
    }
    let s = rest.iter().fold(T::A::ZERO, |a, &v| a + v.to_acc());
    // the lanes in order: a pairwise combine here made the compiler vectorise the whole loop
    // two lanes wide (vmovsd + 128-bit adds; layer norm's mean pass was its slowest)
    lanes.iter().fold(s, |a, &v| a + v)
}

/// Max of a slice (NaN propagates); `NEG_INF` for an empty slice.
#[inline(always)]
pub fn max_acc<T: Float>(x: &[T]) -> T::A {
    max_lanes::<T, true>(x)
}

/// Max of a slice with NaNs skipped; `NEG_INF` for an empty or all-NaN slice. For softmax, whose
/// NaN rows come out NaN through their sum anyway.
#[inline(always)]
pub fn max_skipping_nan<T: Float>(x: &[T]) -> T::A {
    max_lanes::<T, false>(x)
}

/// The lanes take a plain compare-and-select (one `vmaxps`); with NAN, NaNs are flagged on the
/// side, so the loop still vectorises (the NaN test inside the select compiled to scalar code
/// and made softmax's max pass its slowest).
#[inline(always)]
#[allow(clippy::eq_op)]
fn max_lanes<T: Float, const NAN: bool>(x: &[T]) -> T::A {
    let mut lanes = [T::A::NEG_INF; 16];
    let mut nan = [0u32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..16 {
            let v = c[j].to_acc();
            lanes[j] = if v > lanes[j] { v } else { lanes[j] };
            if NAN {
                nan[j] |= (v != v) as u32;
            }
        }
    }
    let mut m = T::A::NEG_INF;
    for &v in rest {
        let v = v.to_acc();
        if NAN && v != v {
            return T::A::NAN;
        }
        m = if v > m { v } else { m };
    }
    if NAN && nan.iter().any(|&n| n != 0) {
        return T::A::NAN;
    }
    lanes.iter().fold(m, |a, &l| if l > a { l } else { a })
}

fn reduce_generic<T: Send + Sync + Copy, O: Send + Copy + Default>(
    x: &[T],
    shape: &[usize],
    dim: usize,
    row: impl Fn(&mut dyn Iterator<Item = T>) -> O + Sync,
    contiguous_row: impl Fn(&[T]) -> O + Sync,
) -> Vec<O> {
    let (outer, len, inner) = split_dims(shape, dim);
    let mut out = vec![O::default(); outer * inner];
    if out.is_empty() {
        return out;
    }
    if inner == 1 {
        let per = super::rows_per_task(len);
        crate::par::chunks_mut(&mut out, per, |t, o| {
            for (i, o) in o.iter_mut().enumerate() {
                let r = t * per + i;
                *o = contiguous_row(&x[r * len..(r + 1) * len]);
            }
        });
    } else {
        // whole outer slices per task, about PAR_CHUNK input elements each (one task per outer
        // index was thousands of tiny tasks for a reduction over a short dim)
        let per = super::rows_per_task(len * inner);
        crate::par::chunks_mut(&mut out, inner * per, |t, o| {
            for (u, o) in o.chunks_mut(inner).enumerate() {
                let base = (t * per + u) * len * inner;
                for (i, o) in o.iter_mut().enumerate() {
                    let mut it = (0..len).map(|j| x[base + j * inner + i]);
                    *o = row(&mut it);
                }
            }
        });
    }
    out
}

/// `{op}_{f16,bf16,f32,f64}` (not argmax).
pub fn reduce_float<T: Float>(op: ReduceOp, x: &View, dim: usize) -> Result<Vec<T>> {
    let src = contiguous::<T>(op.name(), x)?;
    let len = x.shape()[dim];
    let n = T::A::from_f64(len as f64);
    let shape = x.shape();
    Ok(match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let mean = op == ReduceOp::Mean;
            let fin = move |s: T::A| T::from_acc(if mean { s / n } else { s });
            reduce_generic(
                &src,
                shape,
                dim,
                |it| fin(it.fold(T::A::ZERO, |a, v| a + v.to_acc())),
                |r| fin(sum_acc(r)),
            )
        }
        ReduceOp::Max => reduce_generic(
            &src,
            shape,
            dim,
            |it| T::from_acc(it.fold(T::A::NEG_INF, |a, v| a.max_nan(v.to_acc()))),
            |r| T::from_acc(max_acc(r)),
        ),
        ReduceOp::Min | ReduceOp::ArgMax => {
            let f = |it: &mut dyn Iterator<Item = T>| {
                T::from_acc(it.fold(-T::A::NEG_INF, |a, v| a.min_nan(v.to_acc())))
            };
            reduce_generic(&src, shape, dim, f, |r| f(&mut r.iter().copied()))
        }
    })
}

/// `{sum,max,min}_{u8,i32,i64}` (sums wrap).
pub fn reduce_int<T: IntElem>(op: ReduceOp, x: &View, dim: usize) -> Result<Vec<T>> {
    let src = contiguous::<T>(op.name(), x)?;
    let f = move |it: &mut dyn Iterator<Item = T>| -> T {
        match op {
            ReduceOp::Max => it.fold(None, |a: Option<T>, v| Some(a.map_or(v, |a| a.max(v)))),
            ReduceOp::Min => it.fold(None, |a: Option<T>, v| Some(a.map_or(v, |a| a.min(v)))),
            _ => Some(it.fold(T::ZERO, |a, v| a.w_add(v))),
        }
        .unwrap_or(T::ZERO)
    };
    Ok(reduce_generic(&src, x.shape(), dim, f, |r| {
        f(&mut r.iter().copied())
    }))
}

/// NaN test for any partially ordered element (NaN is the value unequal to itself).
#[inline]
fn is_nan<T: PartialEq>(v: T) -> bool {
    #[allow(clippy::eq_op)]
    let nan = v != v;
    nan
}

/// `argmax_{dtype}`: index of the first maximum along `dim` (first NaN for floats).
pub fn argmax_plain<T: Elem>(x: &View, dim: usize) -> Result<Vec<i64>> {
    let src = contiguous::<T>("argmax", x)?;
    let f = |it: &mut dyn Iterator<Item = T>| -> i64 {
        let mut best: Option<T> = None;
        let mut idx = 0i64;
        for (j, v) in it.enumerate() {
            let better = match best {
                None => true,
                // a NaN best stays the best; a NaN value beats any number
                Some(b) => !is_nan(b) && (v > b || is_nan(v)),
            };
            if better {
                best = Some(v);
                idx = j as i64;
            }
        }
        idx
    };
    Ok(reduce_generic(&src, x.shape(), dim, f, |r| {
        f(&mut r.iter().copied())
    }))
}
