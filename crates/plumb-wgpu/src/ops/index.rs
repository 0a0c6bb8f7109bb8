//! index_select and gather (one kernel: the ids' strides say which).

use super::{buf, lay, out_buf, params, per_word, u32_of};
use crate::kernels::{bit_codec, Family, KernelSpec};
use crate::launch::{groups_1d, Ctx};
use plumb_core::{DType, Error, Result, StorageRef, View};
use std::sync::Arc;

fn run(
    ctx: &Ctx,
    op: &'static str,
    x: View,
    ids: View,
    dim: usize,
    out_shape: &[usize],
    ids_layout: (usize, &[usize]),
) -> Result<StorageRef> {
    if !matches!(ids.dtype, DType::I32 | DType::I64 | DType::U8) {
        return Err(Error::DTypeMismatch {
            op,
            lhs: ids.dtype,
            rhs: DType::I64,
        });
    }
    if x.dtype.is_quantized() {
        return Err(Error::invalid(op, "dequantize the table first"));
    }
    check_ids(ctx, op, ids, x.shape(), dim)?;
    let n: usize = out_shape.iter().product();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op)?;
    let p = params(
        op,
        [
            u32_of(dim, op, "dim")?,
            u32_of(x.shape()[dim], op, "dim size")?,
            0,
            0,
        ],
        n,
        out_shape,
        &[lay(x.layout), ids_layout],
    )?;
    let spec = KernelSpec::new(
        Family::Index,
        op,
        &format!("{}_{}", x.dtype.name(), ids.dtype.name()),
        bit_codec(x.dtype),
        bit_codec(ids.dtype),
        true,
    );
    ctx.run(
        &spec,
        &p,
        &[
            buf(ctx, &x, op)?,
            buf(ctx, &ids, op)?,
            out_buf(ctx, &out, op)?,
        ],
        groups_1d(n.div_ceil(per_word(x.dtype)) as u64),
    )?;
    Ok(Arc::new(out))
}

/// An id outside `0..shape[dim]` is an error (as on the CPU), not a silent zero, found before the
/// kernel is queued: from the range the storage recorded when the ids were uploaded, else by
/// reading the ids back (which also flushes the queued batch and waits for it).
fn check_ids(ctx: &Ctx, op: &'static str, ids: View, shape: &[usize], dim: usize) -> Result<()> {
    if ids.numel() == 0 {
        return Ok(());
    }
    let size = shape[dim];
    let inside = |v: f64| v >= 0.0 && v < size as f64;
    // a view's ids are among its storage's: within a known range inside the bound, all are
    let known = ids
        .storage
        .as_any()
        .downcast_ref::<crate::pool::WgpuStorage>()
        .and_then(|s| s.range());
    if known.is_some_and(|(lo, hi)| inside(lo) && inside(hi)) {
        return Ok(());
    }
    let bytes = super::movement::download(ctx, ids)?;
    let vals = plumb_core::convert::bytes_to_f64(ids.dtype, &bytes, ids.numel())?;
    match vals.into_iter().find(|&v| !inside(v)) {
        Some(id) => Err(Error::OutOfRange {
            op,
            what: "id",
            index: id as i64,
            bound: size,
            shape: shape.to_vec(),
        }),
        None => Ok(()),
    }
}

pub fn index_select(ctx: &Ctx, x: View, ids: View, dim: usize) -> Result<StorageRef> {
    if ids.layout.rank() != 1 || dim >= x.layout.rank() {
        return Err(Error::shape(
            "index_select",
            x.shape(),
            ids.shape(),
            "ids must be 1-D",
        ));
    }
    let mut shape = x.shape().to_vec();
    shape[dim] = ids.shape()[0];
    let mut strides = vec![0; shape.len()];
    strides[dim] = ids.layout.strides[0];
    run(
        ctx,
        "index_select",
        x,
        ids,
        dim,
        &shape,
        (ids.layout.offset, &strides),
    )
}

pub fn gather(ctx: &Ctx, x: View, ids: View, dim: usize) -> Result<StorageRef> {
    if ids.layout.rank() != x.layout.rank() || dim >= x.layout.rank() {
        return Err(Error::shape(
            "gather",
            x.shape(),
            ids.shape(),
            "ids must have x's rank",
        ));
    }
    let shape = ids.shape().to_vec();
    run(ctx, "gather", x, ids, dim, &shape, lay(ids.layout))
}
