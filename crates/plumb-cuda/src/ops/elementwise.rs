//! unary_{dtype}, binary_{dtype}, cmp_{dtype}, where_b{bytes}, cast_{from}_{to}.

use super::{code, esize, input, stor, tag};
use crate::ctx::{grid, n64, Arg, Ctx, Module};
use crate::storage::CudaStorage;
use plumb_core::{convert, BinaryOp, CmpOp, DType, Error, Result, StorageRef, UnaryOp, View};
use std::sync::Arc;

/// Allocate the output of an elementwise kernel over `x0`'s shape and launch `name` with
/// (op code if any, n, each input's pointer and layout, output).
fn run(
    ctx: &Ctx,
    name: &str,
    op: &'static str,
    opcode: Option<i32>,
    out_dtype: DType,
    ins: &[&View],
) -> Result<StorageRef> {
    let x0 = ins[0];
    let n = x0.numel();
    let out: CudaStorage = ctx.alloc(out_dtype.storage_bytes(n), op, out_dtype, x0.shape())?;
    if n > 0 {
        let mut args = Vec::with_capacity(2 * ins.len() + 3);
        if let Some(c) = opcode {
            args.push(Arg::I32(c));
        }
        args.push(n64(n));
        for v in ins {
            let (p, s) = input(ctx, v, op)?;
            args.push(Arg::U64(p));
            args.push(Arg::S(s));
        }
        args.push(Arg::U64(out.ptr()));
        ctx.launch(Module::Elementwise, name, grid(n), &mut args)?;
    }
    Ok(Arc::new(out))
}

fn float_only(ctx: &Ctx, op: &str, dt: DType) -> Error {
    Error::UnsupportedDType {
        op: op.into(),
        dtype: dt,
        device: ctx.id.clone(),
        reason: "this op is defined for floating dtypes".into(),
    }
}

pub fn unary(ctx: &Ctx, op: UnaryOp, x: View) -> Result<StorageRef> {
    if !x.dtype.is_float() && !op.int_ok() {
        return Err(float_only(ctx, op.name(), x.dtype));
    }
    let name = format!("unary_{}", tag(x.dtype));
    run(
        ctx,
        &name,
        op.name(),
        Some(code(&UnaryOp::ALL, op)),
        x.dtype,
        &[&x],
    )
}

pub fn binary(ctx: &Ctx, op: BinaryOp, a: View, b: View) -> Result<StorageRef> {
    if op == BinaryOp::Pow && !a.dtype.is_float() {
        return Err(float_only(ctx, "pow", a.dtype));
    }
    if op == BinaryOp::Div && !a.dtype.is_float() {
        check_divisor(ctx, &b)?;
    }
    let name = format!("binary_{}", tag(a.dtype));
    run(
        ctx,
        &name,
        op.name(),
        Some(code(&BinaryOp::ALL, op)),
        a.dtype,
        &[&a, &b],
    )
}

/// Integer division by zero is an error (as on the CPU), found before the kernel runs.
fn check_divisor(ctx: &Ctx, b: &View) -> Result<()> {
    let bytes = super::movement::download(ctx, *b)?;
    let vals = convert::bytes_to_f64(b.dtype, &bytes, b.numel())?;
    if let Some(pos) = vals.iter().position(|&v| v == 0.0) {
        return Err(Error::int_div_by_zero(b.dtype, b.shape(), pos));
    }
    Ok(())
}

pub fn cmp(ctx: &Ctx, op: CmpOp, a: View, b: View) -> Result<StorageRef> {
    let name = format!("cmp_{}", tag(a.dtype));
    run(
        ctx,
        &name,
        op.name(),
        Some(code(&CmpOp::ALL, op)),
        DType::Bool,
        &[&a, &b],
    )
}

pub fn where_cond(ctx: &Ctx, cond: View, a: View, b: View) -> Result<StorageRef> {
    let name = format!("where_b{}", esize(a.dtype));
    run(ctx, &name, "where", None, a.dtype, &[&cond, &a, &b])
}

pub fn cast(ctx: &Ctx, x: View, to: DType) -> Result<StorageRef> {
    if x.dtype == to {
        return super::movement::copy(ctx, x);
    }
    stor(ctx, &x, "cast")?;
    let name = format!("cast_{}_{}", x.dtype.name(), to.name());
    run(ctx, &name, "cast", None, to, &[&x])
}
