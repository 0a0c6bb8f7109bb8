//! `{op}_{dtype}` for the unary ops: floats compute in their accumulator type (f32 for halves),
//! signed integers support neg/abs/relu (wrapping, like two's-complement hardware).

use super::{par_map, Acc, Float};
use crate::storage::{contiguous, unsupported, Elem};
use plumb_core::{Result, UnaryOp, View};

/// Apply `op` to every element, with a loop compiled per op so the scalar function inlines and
/// vectorises (a function pointer per element would not).
macro_rules! per_op {
    ($op:expr, $A:ty, |$x:ident| $apply:expr) => {
        match $op {
            UnaryOp::Neg => {
                let f = |$x: $A| -$x;
                $apply(f)
            }
            UnaryOp::Abs => {
                let f = |$x: $A| $x.abs();
                $apply(f)
            }
            UnaryOp::Exp => {
                let f = |$x: $A| $x.exp();
                $apply(f)
            }
            UnaryOp::Log => {
                let f = |$x: $A| $x.ln();
                $apply(f)
            }
            UnaryOp::Sqrt => {
                let f = |$x: $A| $x.sqrt();
                $apply(f)
            }
            UnaryOp::Rsqrt => {
                let f = |$x: $A| <$A>::ONE / $x.sqrt();
                $apply(f)
            }
            UnaryOp::Recip => {
                let f = |$x: $A| <$A>::ONE / $x;
                $apply(f)
            }
            UnaryOp::Tanh => {
                let f = |$x: $A| $x.tanh();
                $apply(f)
            }
            UnaryOp::Sigmoid => {
                let f = |$x: $A| <$A>::ONE / (<$A>::ONE + (-$x).exp());
                $apply(f)
            }
            UnaryOp::Relu => {
                let f = relu::<$A>;
                $apply(f)
            }
            UnaryOp::Gelu => {
                let f = gelu::<$A>;
                $apply(f)
            }
            UnaryOp::GeluTanh => {
                let f = gelu_tanh::<$A>;
                $apply(f)
            }
            UnaryOp::Silu => {
                let f = |$x: $A| $x / (<$A>::ONE + (-$x).exp());
                $apply(f)
            }
            UnaryOp::Sin => {
                let f = |$x: $A| $x.sin();
                $apply(f)
            }
            UnaryOp::Cos => {
                let f = |$x: $A| $x.cos();
                $apply(f)
            }
        }
    };
}

#[inline(always)]
fn relu<A: Acc>(x: A) -> A {
    // NaN propagates (PyTorch)
    if x.is_nan() || x > A::ZERO {
        x
    } else {
        A::ZERO
    }
}

/// Exact gelu: x/2 · (1 + erf(x/√2)).
#[inline(always)]
fn gelu<A: Acc>(x: A) -> A {
    let half = A::from_f64(0.5);
    half * x * (A::ONE + (x * A::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
}

/// Tanh-approximated gelu.
#[inline(always)]
fn gelu_tanh<A: Acc>(x: A) -> A {
    let c = A::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let half = A::from_f64(0.5);
    half * x * (A::ONE + (c * (x + A::from_f64(0.044715) * x * x * x)).tanh())
}

/// `{op}_{f16,bf16,f32,f64}`. Halves are widened to f32, mapped and rounded once, three
/// vectorised passes: mapping them element by element left the conversions and the op in a
/// closure the compiler did not inline (38% of MiniLM's time in f16 went to its gelu).
pub fn unary_float<T: Float>(op: UnaryOp, x: &View) -> Result<Vec<T>> {
    let src = contiguous::<T>(op.name(), x)?;
    if T::IS_HALF {
        let wide = T::slice_to_f32(&src);
        let mapped: Vec<f32> = per_op!(op, f32, |x| |f| par_map(&wide, f));
        let out = T::slice_from_f32(&mapped);
        for v in [wide, mapped] {
            crate::pool::give(<f32 as Elem>::wrap(v));
        }
        return Ok(out);
    }
    fn apply<T: Float>(src: &[T], f: impl Fn(T::A) -> T::A + Sync) -> Vec<T> {
        par_map(src, move |v: T| T::from_acc(f(v.to_acc())))
    }
    Ok(per_op!(op, T::A, |x| |f| apply(&src, f)))
}

/// Integer element types for arithmetic.
pub trait IntElem: Elem + Ord {
    const ZERO: Self;
    fn w_add(self, o: Self) -> Self;
    fn w_sub(self, o: Self) -> Self;
    fn w_mul(self, o: Self) -> Self;
    /// truncating division; the caller has ruled out a zero divisor
    fn w_div(self, o: Self) -> Self;
    fn w_neg(self) -> Self;
    fn w_abs(self) -> Self;
}

macro_rules! int_elem {
    ($t:ty, $abs:expr, $neg:expr) => {
        impl IntElem for $t {
            const ZERO: Self = 0;
            fn w_add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn w_sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn w_mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn w_div(self, o: Self) -> Self {
                if o == 0 {
                    0
                } else {
                    self.wrapping_div(o)
                }
            }
            fn w_neg(self) -> Self {
                let f: fn($t) -> $t = $neg;
                f(self)
            }
            fn w_abs(self) -> Self {
                let f: fn($t) -> $t = $abs;
                f(self)
            }
        }
    };
}
int_elem!(u8, |x| x, |x| x.wrapping_neg());
int_elem!(i32, |x| x.wrapping_abs(), |x| x.wrapping_neg());
int_elem!(i64, |x| x.wrapping_abs(), |x| x.wrapping_neg());

/// `{neg,abs,relu}_{u8,i32,i64}`.
pub fn unary_int<T: IntElem>(op: UnaryOp, x: &View) -> Result<Vec<T>> {
    let f: fn(T) -> T = match op {
        UnaryOp::Neg => |v: T| v.w_neg(),
        UnaryOp::Abs => |v: T| v.w_abs(),
        UnaryOp::Relu => |v: T| v.max(T::ZERO),
        _ => {
            return Err(unsupported(
                op.name(),
                x.dtype,
                "only neg, abs and relu are defined on integers",
            ))
        }
    };
    let src = contiguous::<T>(op.name(), x)?;
    Ok(par_map(&src, f))
}

/// A row of `T` mapped through `op` in place (computed in T's accumulator type), for kernels that
/// apply an activation to each block of their output while it is in cache.
pub type RowMap<'a, T> = &'a (dyn Fn(&mut [T]) + Sync);

/// An owned [`RowMap`].
pub type RowMapBox<T> = Box<dyn Fn(&mut [T]) + Sync>;

/// [`RowMap`] of `op` for a float type.
pub fn row_map<T: Float>(op: UnaryOp) -> RowMapBox<T> {
    fn boxed<T: Float, F: Fn(T::A) -> T::A + Sync + 'static>(f: F) -> RowMapBox<T> {
        Box::new(move |row: &mut [T]| {
            super::simd::map_in_place(row, &|v: T| T::from_acc(f(v.to_acc())))
        })
    }
    per_op!(op, T::A, |x| |f| boxed::<T, _>(f))
}
