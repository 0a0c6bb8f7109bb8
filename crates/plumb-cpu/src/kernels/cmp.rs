//! `{op}_{dtype}` for comparisons (output bool: one byte, 0 or 1) and `where_{dtype}`.
//! Floats compare by IEEE rules: NaN is unequal to everything, `ne` is true for NaN.

use super::binary::zip_with;
use crate::storage::{contiguous, Elem};
use plumb_core::{CmpOp, Result, View};

/// `{eq,ne,lt,le,gt,ge}_{dtype}` for every plain dtype.
pub fn cmp_plain<T: Elem>(op: CmpOp, a: &View, b: &View) -> Result<Vec<u8>> {
    let f: fn(T, T) -> u8 = match op {
        CmpOp::Eq => |x: T, y: T| (x == y) as u8,
        CmpOp::Ne => |x: T, y: T| (x != y) as u8,
        CmpOp::Lt => |x: T, y: T| (x < y) as u8,
        CmpOp::Le => |x: T, y: T| (x <= y) as u8,
        CmpOp::Gt => |x: T, y: T| (x > y) as u8,
        CmpOp::Ge => |x: T, y: T| (x >= y) as u8,
    };
    zip_with::<T, u8>(op.name(), a, b, f)
}

/// `where_{dtype}`: `cond ? a : b` (cond is bool, any non-zero byte is true).
pub fn where_plain<T: Elem>(cond: &View, a: &View, b: &View) -> Result<Vec<T>> {
    let c = contiguous::<u8>("where", cond)?;
    let x = contiguous::<T>("where", a)?;
    let y = contiguous::<T>("where", b)?;
    let mut out = crate::storage::alloc_overwrite::<T>(c.len());
    let ch = super::PAR_CHUNK;
    crate::par::chunks_mut(&mut out, ch, |i, o| {
        let at = i * ch..i * ch + o.len();
        let (c, x, y) = (&c[at.clone()], &x[at.clone()], &y[at]);
        for (((o, &c), &x), &y) in o.iter_mut().zip(c).zip(x).zip(y) {
            *o = if c != 0 { x } else { y };
        }
    });
    Ok(out)
}
