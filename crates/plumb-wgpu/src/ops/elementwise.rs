//! unary, binary, cmp, where, cast.

use super::{all_contiguous, buf, codec, lay, out_buf, params, per_word};
use crate::kernels::{bit_codec, compute_codec, Family, KernelSpec};
use crate::launch::{groups_1d, Ctx};
use plumb_core::{BinaryOp, CmpOp, DType, Error, Result, StorageRef, UnaryOp, View};
use std::sync::Arc;

fn launch(ctx: &Ctx, spec: KernelSpec, out_dtype: DType, ins: &[&View]) -> Result<StorageRef> {
    let op: &'static str = spec.op;
    let x0 = ins[0];
    let n = x0.numel();
    let out = ctx.alloc(out_dtype.storage_bytes(n), op)?;
    let lays: Vec<(usize, &[usize])> = ins.iter().map(|v| lay(v.layout)).collect();
    let p = params(op, [0; 4], n, x0.shape(), &lays)?;
    let mut bufs = Vec::with_capacity(ins.len() + 1);
    for v in ins {
        bufs.push(buf(ctx, v, op)?);
    }
    bufs.push(out_buf(ctx, &out, op)?);
    let words = n.div_ceil(per_word(out_dtype)) as u64;
    ctx.run(&spec, &p, &bufs, groups_1d(words))?;
    Ok(Arc::new(out))
}

pub fn unary(ctx: &Ctx, op: UnaryOp, x: View) -> Result<StorageRef> {
    let c = codec(ctx, x.dtype, op.name())?;
    if !x.dtype.is_float() && !op.int_ok() {
        return Err(Error::UnsupportedDType {
            op: op.name().into(),
            dtype: x.dtype,
            device: ctx.id.clone(),
            reason: "this op is defined for floating dtypes".into(),
        });
    }
    let spec = KernelSpec::new(
        Family::Unary,
        op.name(),
        x.dtype.name(),
        c,
        c,
        !all_contiguous(&[&x]),
    );
    launch(ctx, spec, x.dtype, &[&x])
}

pub fn binary(ctx: &Ctx, op: BinaryOp, a: View, b: View) -> Result<StorageRef> {
    let c = codec(ctx, a.dtype, op.name())?;
    if op == BinaryOp::Pow && !a.dtype.is_float() {
        return Err(Error::UnsupportedDType {
            op: "pow".into(),
            dtype: a.dtype,
            device: ctx.id.clone(),
            reason: "pow is defined for floating dtypes".into(),
        });
    }
    let spec = KernelSpec::new(
        Family::Binary,
        op.name(),
        a.dtype.name(),
        c,
        c,
        !all_contiguous(&[&a, &b]),
    );
    launch(ctx, spec, a.dtype, &[&a, &b])
}

pub fn cmp(ctx: &Ctx, op: CmpOp, a: View, b: View) -> Result<StorageRef> {
    let c = codec(ctx, a.dtype, op.name())?;
    let spec = KernelSpec::new(
        Family::Cmp,
        op.name(),
        a.dtype.name(),
        c,
        c,
        !all_contiguous(&[&a, &b]),
    );
    launch(ctx, spec, DType::Bool, &[&a, &b])
}

pub fn where_cond(ctx: &Ctx, cond: View, a: View, b: View) -> Result<StorageRef> {
    let c = bit_codec(a.dtype);
    let spec = KernelSpec::new(
        Family::Where,
        "where",
        a.dtype.name(),
        c,
        c,
        !all_contiguous(&[&cond, &a, &b]),
    );
    launch(ctx, spec, a.dtype, &[&cond, &a, &b])
}

/// The codec a cast reads or writes `dt` with (f16 and f64 work without SHADER_F16/F64 here,
/// converting through f32).
fn cast_codec(ctx: &Ctx, dt: DType) -> Result<&'static str> {
    match dt {
        DType::F16 => compute_codec(dt, ctx.has_f16).ok_or_else(|| Error::invalid("cast", "f16")),
        DType::F64 if ctx.has_f64 => Ok("f64"),
        DType::F64 => Ok("f64bits"),
        _ => codec(ctx, dt, "cast"),
    }
}

pub fn cast(ctx: &Ctx, x: View, to: DType) -> Result<StorageRef> {
    let from = cast_codec(ctx, x.dtype)?;
    let into = cast_codec(ctx, to)?;
    let spec = KernelSpec::new(
        Family::Cast,
        "cast",
        &format!("{}_{}", x.dtype.name(), to.name()),
        from,
        into,
        !all_contiguous(&[&x]),
    );
    launch(ctx, spec, to, &[&x])
}
