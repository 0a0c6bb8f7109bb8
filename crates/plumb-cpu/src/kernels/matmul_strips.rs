//! Products with a linear layer's weight packed at load as `matmul_rows`' strips
//! ([`PackedStrips`]), at any number of rows: f32 weights, and f16 weights, which the kernel
//! widens to f32 chunk by chunk into L1 (on CPUs without f16 arithmetic, where a product of f16
//! values is a product of their f32 widenings anyway). f16 `a` is widened to f32 first (one pass
//! over it), the bias, activation and residual are applied to the f32 sums, and the result is
//! rounded to f16 once.

use super::matmul::{rows_product, uniform_rows, whole_weight, Dims};
use super::matmul_rows::{matmul_rows, PackedStrips, Rows, B, STRIP};
use super::matmul_widen::{Epilogue, Wide};
use super::unary::RowMap;
use super::Float;
use crate::storage::{contiguous, raw_slice, Elem};
use plumb_core::{Result, View};
use std::any::TypeId;

/// f32 products with a weight packed as [`PackedStrips`] (the whole matrix, broadcast over any
/// batch): every row of `a` (batch dims folded in; copied into contiguous rows where they are
/// not evenly spaced with unit column stride) through [`matmul_rows`], at any number of rows.
/// `None` for any other product.
pub(super) fn f32_product<T: Float>(
    a: &View,
    b: &View,
    d: Dims,
    bias: Option<&[T]>,
    act: Option<RowMap<T>>,
    res: Option<&[T]>,
) -> Result<Option<Vec<T>>> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return Ok(None);
    }
    let Some(p) = crate::storage::storage_of("matmul", b)
        .ok()
        .and_then(|s| s.packed_strips())
        .filter(|p| whole_weight(b, d, (p.k(), p.n())))
    else {
        return Ok(None);
    };
    let m = d.batch * d.m;
    if m == 0 {
        return Ok(Some(Vec::new()));
    }
    let l = a.layout;
    let r = l.rank();
    let rs = match d.batch {
        1 => Some(l.strides[r - 2] as isize),
        _ => uniform_rows(l),
    };
    let da = raw_slice::<f32>("matmul", a)?;
    let copy;
    let (rows, lda) = match rs {
        Some(rs) if l.strides[r - 1] == 1 && (m == 1 || rs >= d.k as isize) => {
            (&da[l.offset..], if m == 1 { d.k } else { rs as usize })
        }
        _ => {
            copy = contiguous::<f32>("matmul", a)?;
            (&copy[..], d.k)
        }
    };
    let x = Rows {
        a: rows,
        lda,
        b: B::Strips(p.data()),
        ldb: STRIP,
        m,
        k: d.k,
        n: d.n,
    };
    Ok(rows_product(x, bias, act, res))
}

/// The f16 strips behind `b` where `b` is an f16 weight stored so and the view is the whole
/// matrix (broadcast over any batch dims); `None` otherwise.
pub(super) fn packed_f16<'a>(b: &View<'a>, d: Dims) -> Option<&'a PackedStrips<half::f16>> {
    let p = crate::storage::storage_of("matmul", b)
        .ok()?
        .packed_strips_f16()?;
    whole_weight(b, d, (p.k(), p.n())).then_some(p)
}

/// f16 products with a weight packed as f16 strips ([`packed_f16`]): `a`'s rows (batch dims
/// folded in) widened to f32, multiplied through [`matmul_rows`] (which widens the weight chunk
/// by chunk), `epi` applied to the f32 sums, rounded once. `None` for any other product.
pub(super) fn f16_product<T: Wide>(
    a: &View,
    b: &View,
    d: Dims,
    epi: Epilogue<T>,
) -> Result<Option<Vec<T>>> {
    if TypeId::of::<T>() != TypeId::of::<half::f16>() {
        return Ok(None);
    }
    let Some(p) = packed_f16(b, d) else {
        return Ok(None);
    };
    let m = d.batch * d.m;
    if m == 0 {
        return Ok(Some(Vec::new()));
    }
    let af = T::slice_to_f32(&contiguous::<T>("matmul", a)?);
    let bias = epi.bias.map(T::slice_to_f32);
    let res = epi.res.map(T::slice_to_f32);
    let x = Rows {
        a: &af,
        lda: d.k,
        b: B::StripsF16(p.data()),
        ldb: STRIP,
        m,
        k: d.k,
        n: d.n,
    };
    let out = matmul_rows(x, bias.as_deref(), epi.act, res.as_deref());
    let narrowed = out.as_deref().map(T::slice_from_f32);
    // the f32 copies go back to the buffer pool: fresh ones cost page faults on every call
    for v in [Some(af), bias, res, out].into_iter().flatten() {
        crate::pool::give(<f32 as Elem>::wrap(v));
    }
    Ok(narrowed)
}
