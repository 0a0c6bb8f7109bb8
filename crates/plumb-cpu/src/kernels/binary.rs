//! `{op}_{dtype}` for the binary ops on equal-shaped (possibly broadcast) views. Floats compute
//! in their accumulator type; integers wrap on overflow; integer division by zero is an error.

use super::unary::IntElem;
use super::{par_map, par_zip, Acc, Float};
use crate::storage::{contiguous, raw_slice, unsupported, Elem};
use plumb_core::{BinaryOp, Error, Result, View};
use std::borrow::Cow;

/// The scalar function of `op` in the accumulator type (max/min propagate NaN).
#[inline]
pub fn binary_fn<A: Acc>(op: BinaryOp) -> fn(A, A) -> A {
    match op {
        BinaryOp::Add => |a: A, b: A| a + b,
        BinaryOp::Sub => |a: A, b: A| a - b,
        BinaryOp::Mul => |a: A, b: A| a * b,
        BinaryOp::Div => |a: A, b: A| a / b,
        BinaryOp::Pow => |a: A, b: A| a.powf(b),
        BinaryOp::Max => |a: A, b: A| a.max_nan(b),
        BinaryOp::Min => |a: A, b: A| a.min_nan(b),
    }
}

/// A view whose every element is the same storage element (a broadcast scalar).
pub fn as_scalar<T: Elem>(op: &str, v: &View) -> Result<Option<T>> {
    if v.numel() > 0 && v.layout.strides.iter().all(|&s| s == 0) {
        let data = raw_slice::<T>(op, v)?;
        return Ok(Some(data[v.layout.offset]));
    }
    Ok(None)
}

/// A view that repeats one contiguous block of storage (a bias row broadcast over the leading
/// dims): the block, when it is at least 16 elements and shorter than the view.
fn as_repeated<'a, T: Elem>(op: &str, v: &View<'a>) -> Result<Option<&'a [T]>> {
    let l = v.layout;
    let mut period = 1usize;
    let mut d = l.rank();
    while d > 0 {
        let (size, stride) = (l.shape[d - 1], l.strides[d - 1]);
        if size != 1 && stride != period {
            break;
        }
        period *= size;
        d -= 1;
    }
    let leading_broadcast = (0..d).all(|i| l.shape[i] == 1 || l.strides[i] == 0);
    if !leading_broadcast || period < 16 || period >= v.numel() {
        return Ok(None);
    }
    let data = raw_slice::<T>(op, v)?;
    Ok(Some(&data[l.offset..l.offset + period]))
}

enum Operand<'a, T: Clone> {
    Scalar(T),
    Repeat(&'a [T]),
    Slice(Cow<'a, [T]>),
}

fn operand<'a, T: Elem>(op: &str, v: &View<'a>) -> Result<Operand<'a, T>> {
    Ok(match as_scalar::<T>(op, v)? {
        Some(s) => Operand::Scalar(s),
        None => match as_repeated::<T>(op, v)? {
            Some(r) => Operand::Repeat(r),
            None => Operand::Slice(contiguous::<T>(op, v)?),
        },
    })
}

/// Apply `f` over two operands, using scalar fast paths when one side is a broadcast scalar.
pub fn zip_with<T: Elem, D: Elem>(
    op: &str,
    a: &View,
    b: &View,
    f: impl Fn(T, T) -> D + Sync,
) -> Result<Vec<D>> {
    let (oa, ob) = (operand::<T>(op, a)?, operand::<T>(op, b)?);
    Ok(match (oa, ob) {
        (Operand::Scalar(x), Operand::Scalar(y)) => vec![f(x, y); a.numel()],
        (Operand::Slice(x), Operand::Scalar(y)) => par_map(&x, |v| f(v, y)),
        (Operand::Scalar(x), Operand::Slice(y)) => par_map(&y, |v| f(x, v)),
        (Operand::Slice(x), Operand::Slice(y)) => par_zip(&x, &y, f),
        (Operand::Slice(x), Operand::Repeat(y)) => par_zip_repeat(&x, y, f),
        (Operand::Repeat(x), Operand::Slice(y)) => par_zip_repeat(&y, x, move |v, w| f(w, v)),
        // both sides broadcast: materialise them
        _ => par_zip(&contiguous::<T>(op, a)?, &contiguous::<T>(op, b)?, f),
    })
}

/// `out[i] = f(x[i], period[i % period.len()])`, in parallel chunks of whole periods.
fn par_zip_repeat<T: Elem, D: Elem>(x: &[T], period: &[T], f: impl Fn(T, T) -> D + Sync) -> Vec<D> {
    let p = period.len();
    let chunk = p * (super::PAR_CHUNK / p).max(1);
    let mut out = crate::storage::alloc_overwrite::<D>(x.len());
    crate::par::zip_chunks_mut(&mut out, chunk, x, chunk, |o, x| {
        for (o, x) in o.chunks_mut(p).zip(x.chunks(p)) {
            super::simd::zip_chunk(o, x, period, &f);
        }
    });
    out
}

/// `{op}_{f16,bf16,f32,f64}`.
pub fn binary_float<T: Float>(op: BinaryOp, a: &View, b: &View) -> Result<Vec<T>> {
    macro_rules! go {
        ($e:expr) => {{
            let g = $e;
            zip_with::<T, T>(op.name(), a, b, move |x: T, y: T| {
                T::from_acc(g(x.to_acc(), y.to_acc()))
            })
        }};
    }
    match op {
        BinaryOp::Add => go!(|x: T::A, y: T::A| x + y),
        BinaryOp::Sub => go!(|x: T::A, y: T::A| x - y),
        BinaryOp::Mul => go!(|x: T::A, y: T::A| x * y),
        BinaryOp::Div => go!(|x: T::A, y: T::A| x / y),
        other => go!(binary_fn::<T::A>(other)),
    }
}

/// `{op}_{u8,i32,i64}`: wrapping arithmetic; division by zero is an error.
pub fn binary_int<T: IntElem>(op: BinaryOp, a: &View, b: &View) -> Result<Vec<T>> {
    let f: fn(T, T) -> T = match op {
        BinaryOp::Add => |x: T, y: T| x.w_add(y),
        BinaryOp::Sub => |x: T, y: T| x.w_sub(y),
        BinaryOp::Mul => |x: T, y: T| x.w_mul(y),
        BinaryOp::Div => |x: T, y: T| x.w_div(y),
        BinaryOp::Max => |x: T, y: T| x.max(y),
        BinaryOp::Min => |x: T, y: T| x.min(y),
        BinaryOp::Pow => {
            return Err(unsupported(
                "pow",
                a.dtype,
                "pow is defined for floating dtypes only",
            ))
        }
    };
    if op == BinaryOp::Div {
        let divisor = contiguous::<T>("div", b)?;
        if let Some(pos) = divisor.iter().position(|&v| v == T::ZERO) {
            return Err(Error::int_div_by_zero(b.dtype, b.shape(), pos));
        }
    }
    zip_with::<T, T>(op.name(), a, b, f)
}
