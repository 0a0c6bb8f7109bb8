//! `cast_{from}_{to}`: conversions between plain dtypes.
//!
//! Rules: float → f16/bf16 rounds to nearest even; float → int truncates toward zero and
//! saturates at the integer range, NaN → 0; int → int saturates; anything → bool is `!= 0`
//! (NaN → true). Values go through f64 except int → int (exact in i64). i64 values beyond 2⁵³
//! going to f32/f16/bf16 are rounded twice (to f64, then to the target).

use super::{Float, PAR_CHUNK};
use crate::par::zip_chunks_mut;
use crate::storage::{contiguous, Elem};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use plumb_core::{DType, Result, View};
use std::any::TypeId;

/// Element types as cast sources/targets.
pub trait CastElem: Elem {
    const INT: bool;
    fn to_i64(self) -> i64;
    fn from_i64_sat(v: i64) -> Self;
}

macro_rules! int_cast {
    ($t:ty) => {
        impl CastElem for $t {
            const INT: bool = true;
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64_sat(v: i64) -> Self {
                v.clamp(<$t>::MIN as i64, <$t>::MAX as i64) as $t
            }
        }
    };
}
int_cast!(u8);
int_cast!(i32);
int_cast!(i64);

macro_rules! float_cast {
    ($t:ty) => {
        impl CastElem for $t {
            const INT: bool = false;
            fn to_i64(self) -> i64 {
                plumb_core::Element::to_f64(self) as i64
            }
            fn from_i64_sat(v: i64) -> Self {
                <$t as plumb_core::Element>::from_f64(v as f64)
            }
        }
    };
}
float_cast!(f16);
float_cast!(bf16);
float_cast!(f32);
float_cast!(f64);

#[inline]
fn cast_one<S: CastElem, D: CastElem>(s: S) -> D {
    if S::INT && D::INT {
        D::from_i64_sat(s.to_i64())
    } else {
        // Element::from_f64 is Rust's `as` for ints (truncate, saturate, NaN → 0) and
        // round-to-nearest-even for halves
        D::from_f64(s.to_f64())
    }
}

/// Cast a view of `S` into a contiguous vector of `D`.
pub fn cast_plain<S: CastElem, D: CastElem>(x: &View) -> Result<Vec<D>> {
    let src = contiguous::<S>("cast", x)?;
    let src: &[S] = &src;
    // the common float pairs through the halves' vectorised slice conversions
    if TypeId::of::<S>() == TypeId::of::<f32>() {
        let f: &[f32] = bytemuck::cast_slice(src);
        if TypeId::of::<D>() == TypeId::of::<f16>() {
            return retype(f16::slice_from_f32(f));
        }
        if TypeId::of::<D>() == TypeId::of::<bf16>() {
            return retype(bf16::slice_from_f32(f));
        }
    }
    if TypeId::of::<D>() == TypeId::of::<f32>() {
        if TypeId::of::<S>() == TypeId::of::<f16>() {
            return retype(f16::slice_to_f32(bytemuck::cast_slice(src)));
        }
        if TypeId::of::<S>() == TypeId::of::<bf16>() {
            return retype(bf16_to_f32(bytemuck::cast_slice(src)));
        }
    }
    Ok(super::par_map(src, cast_one::<S, D>))
}

/// Reinterpret a vector whose element type is known (by `TypeId`) to be the target type.
fn retype<A: bytemuck::Pod, B: bytemuck::Pod>(v: Vec<A>) -> Result<Vec<B>> {
    bytemuck::try_cast_vec(v).map_err(|(e, _)| crate::storage::device_err("cast", e.to_string()))
}

/// Cast to bool: `!= 0` (NaN is true).
pub fn cast_to_bool<S: CastElem>(x: &View) -> Result<Vec<u8>> {
    let src = contiguous::<S>("cast", x)?;
    Ok(super::par_map(&src, |v: S| (v.to_f64() != 0.0) as u8))
}

/// bf16 → f32 in parallel.
pub fn bf16_to_f32(h: &[bf16]) -> Vec<f32> {
    // every element is written below
    let mut out = crate::storage::alloc_overwrite::<f32>(h.len());
    zip_chunks_mut(&mut out, PAR_CHUNK, h, PAR_CHUNK, |o, i| {
        i.convert_to_f32_slice(o)
    });
    out
}

/// Encode a value of the documented cast rules into `dtype` (for `full`).
pub fn fill_value<T: CastElem>(dtype: DType, v: f64) -> T {
    if dtype == DType::Bool {
        T::from_f64((v != 0.0) as u8 as f64)
    } else {
        T::from_f64(v)
    }
}
