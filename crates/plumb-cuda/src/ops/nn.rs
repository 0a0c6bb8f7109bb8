//! reduce_{rows,cols}_{dtype}, softmax_{dtype}, norm_{dtype} (layer and RMS), rope_{dtype}.
//! Inputs reach these kernels contiguous (strided views are copied once, in `contig`).

use super::{code, contig, tag};
use crate::ctx::{grid, n64, rows, Arg, Ctx, Module};
use plumb_core::{DType, ReduceOp, Result, StorageRef, View};
use std::sync::Arc;

pub fn reduce(
    ctx: &Ctx,
    op: ReduceOp,
    x: View,
    dim: usize,
    index_dtype: DType,
) -> Result<StorageRef> {
    let shape = x.shape();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let len = shape[dim];
    let out_dtype = if op == ReduceOp::ArgMax {
        index_dtype
    } else {
        x.dtype
    };
    let mut out_shape = shape.to_vec();
    out_shape[dim] = 1;
    let n = outer * inner;
    let out = ctx.alloc(out_dtype.storage_bytes(n), op.name(), out_dtype, &out_shape)?;
    if n > 0 {
        let c = contig(ctx, &x, op.name())?;
        let opc = Arg::I32(code(&ReduceOp::ALL, op));
        let idx64 = Arg::I32((index_dtype == DType::I64) as i32);
        let (xp, yp) = (Arg::U64(c.ptr), Arg::U64(out.ptr()));
        if inner == 1 {
            let name = format!("reduce_rows_{}", tag(x.dtype));
            let mut args = [opc, n64(len), xp, yp, idx64];
            ctx.launch(Module::Reduce, &name, rows(outer), &mut args)?;
        } else {
            let name = format!("reduce_cols_{}", tag(x.dtype));
            let mut args = [opc, n64(outer), n64(len), n64(inner), xp, yp, idx64];
            ctx.launch(Module::Reduce, &name, grid(n), &mut args)?;
        }
    }
    Ok(Arc::new(out))
}

/// (rows, last-dim length) of a row-wise op on `x`.
fn row_split(x: &View) -> (usize, usize) {
    let len = x.shape().last().copied().unwrap_or(1);
    let n = x.numel();
    (n.checked_div(len).unwrap_or(0), len)
}

pub fn softmax(ctx: &Ctx, x: View, log: bool) -> Result<StorageRef> {
    let op = if log { "log_softmax" } else { "softmax" };
    let n = x.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op, x.dtype, x.shape())?;
    let (nrows, len) = row_split(&x);
    if n > 0 {
        let c = contig(ctx, &x, op)?;
        let mut args = [
            n64(len),
            Arg::I32(log as i32),
            Arg::U64(c.ptr),
            Arg::U64(out.ptr()),
        ];
        ctx.launch(
            Module::Reduce,
            &format!("softmax_{}", tag(x.dtype)),
            rows(nrows),
            &mut args,
        )?;
    }
    Ok(Arc::new(out))
}

/// Layer norm (`rms` false, optional bias) or RMS norm over the last dim.
pub fn norm(
    ctx: &Ctx,
    rms: bool,
    x: View,
    w: Option<View>,
    b: Option<View>,
    eps: f64,
) -> Result<StorageRef> {
    let op = if rms { "rms_norm" } else { "layer_norm" };
    let n = x.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op, x.dtype, x.shape())?;
    let (nrows, len) = row_split(&x);
    if n > 0 {
        let c = contig(ctx, &x, op)?;
        let wc = w.map(|w| contig(ctx, &w, op)).transpose()?;
        let bc = b.map(|b| contig(ctx, &b, op)).transpose()?;
        let mut args = [
            n64(len),
            Arg::I32(rms as i32),
            Arg::F64(eps),
            Arg::U64(c.ptr),
            Arg::U64(wc.as_ref().map_or(0, |c| c.ptr)),
            Arg::U64(bc.as_ref().map_or(0, |c| c.ptr)),
            Arg::U64(out.ptr()),
        ];
        ctx.launch(
            Module::Reduce,
            &format!("norm_{}", tag(x.dtype)),
            rows(nrows),
            &mut args,
        )?;
    }
    Ok(Arc::new(out))
}

pub fn rope(ctx: &Ctx, x: View, cos: View, sin: View, interleaved: bool) -> Result<StorageRef> {
    let op = "rope";
    let n = x.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op, x.dtype, x.shape())?;
    let shape = x.shape();
    let (s, d) = (shape[2], shape[3]);
    let pairs = n / 2;
    if pairs > 0 {
        let c = contig(ctx, &x, op)?;
        let cc = contig(ctx, &cos, op)?;
        let sc = contig(ctx, &sin, op)?;
        let mut args = [
            n64(pairs),
            n64(s),
            n64(d),
            Arg::I32(interleaved as i32),
            Arg::U64(c.ptr),
            Arg::U64(cc.ptr),
            Arg::U64(sc.ptr),
            Arg::U64(out.ptr()),
        ];
        ctx.launch(
            Module::Reduce,
            &format!("rope_{}", tag(x.dtype)),
            grid(pairs),
            &mut args,
        )?;
    }
    Ok(Arc::new(out))
}
