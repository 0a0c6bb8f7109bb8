//! index_select_b{bytes}_{ids} and gather_b{bytes}_{ids}. Ids are range-checked before the
//! kernel runs, so an out-of-range id is an error and never a wild read: from the range the
//! storage recorded when the ids were uploaded (no wait), else read back.

use super::{contig, esize, input, stor};
use crate::ctx::{grid, n64, Arg, Ctx, Module};
use crate::strided::Strided;
use plumb_core::shape::contiguous_strides;
use plumb_core::{convert, Error, Result, StorageRef, View};
use std::sync::Arc;

/// Every id of `ids` within `0..bound`, else OutOfRange naming the first bad one.
fn check_ids(ctx: &Ctx, op: &'static str, ids: &View, bound: usize, shape: &[usize]) -> Result<()> {
    // a view's ids are among its storage's: within a known range inside the bound, all are
    if let Some((lo, hi)) = stor(ctx, ids, op)?.range() {
        if lo >= 0.0 && hi < bound as f64 {
            return Ok(());
        }
    }
    let bytes = super::movement::download(ctx, *ids)?;
    let vals = convert::bytes_to_f64(ids.dtype, &bytes, ids.numel())?;
    if let Some(&bad) = vals.iter().find(|&&v| v < 0.0 || v >= bound as f64) {
        return Err(Error::OutOfRange {
            op,
            what: "id",
            index: bad as i64,
            bound,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

fn ids_tag(ctx: &Ctx, op: &'static str, ids: &View) -> Result<&'static str> {
    match ids.dtype.name() {
        t @ ("i32" | "i64" | "u8") => Ok(t),
        _ => Err(Error::UnsupportedDType {
            op: op.into(),
            dtype: ids.dtype,
            device: ctx.id.clone(),
            reason: "ids are i32, i64 or u8".into(),
        }),
    }
}

pub fn index_select(ctx: &Ctx, x: View, ids: View, dim: usize) -> Result<StorageRef> {
    let op = "index_select";
    let it = ids_tag(ctx, op, &ids)?;
    let shape = x.shape();
    check_ids(ctx, op, &ids, shape[dim], shape)?;
    let m = ids.numel();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape[dim] = m;
    let n = outer * m * inner;
    let out = ctx.alloc(x.dtype.storage_bytes(n), op, x.dtype, &out_shape)?;
    if n > 0 {
        let (xp, sx) = input(ctx, &x, op)?;
        let idc = contig(ctx, &ids, op)?;
        let mut args = [
            n64(n),
            n64(shape[dim]),
            n64(inner),
            n64(m),
            Arg::U64(xp),
            Arg::S(sx),
            Arg::U64(idc.ptr),
            Arg::U64(out.ptr()),
        ];
        let name = format!("index_select_b{}_{it}", esize(x.dtype));
        ctx.launch(Module::Movement, &name, grid(n), &mut args)?;
    }
    Ok(Arc::new(out))
}

pub fn gather(ctx: &Ctx, x: View, ids: View, dim: usize) -> Result<StorageRef> {
    let op = "gather";
    let it = ids_tag(ctx, op, &ids)?;
    check_ids(ctx, op, &ids, x.shape()[dim], x.shape())?;
    let out_shape = ids.shape().to_vec();
    let n = ids.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op, x.dtype, &out_shape)?;
    if n > 0 {
        let so = Strided::exact(&out_shape, &contiguous_strides(&out_shape), 0, op)?;
        let sx = Strided::exact(x.shape(), &x.layout.strides, x.layout.offset, op)?;
        let idc = contig(ctx, &ids, op)?;
        let mut args = [
            n64(n),
            Arg::I32(dim as i32),
            Arg::S(so),
            Arg::U64(stor(ctx, &x, op)?.ptr()),
            Arg::S(sx),
            Arg::U64(idc.ptr),
            Arg::U64(out.ptr()),
        ];
        let name = format!("gather_b{}_{it}", esize(x.dtype));
        ctx.launch(Module::Movement, &name, grid(n), &mut args)?;
    }
    Ok(Arc::new(out))
}
