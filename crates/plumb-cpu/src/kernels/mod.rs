//! CPU kernels, one file per op family. Kernels are generic over small element traits
//! ([`Float`] for floating dtypes, computed in their accumulator type [`Acc`]); the backend
//! (`lib.rs`) picks the monomorphisation from the dtype.

/// The `k()`, `n()` and `bytes()` of a weight packed into a matmul kernel's layout: a struct
/// with `data: Vec<_>` and the `k` × `n` of the matrix it holds.
macro_rules! packed_dims {
    ($t:ty) => {
        impl $t {
            /// Rows (depth) of the packed matrix.
            pub fn k(&self) -> usize {
                self.k
            }
            /// Columns of the packed matrix.
            pub fn n(&self) -> usize {
                self.n
            }
            /// Bytes held.
            pub fn bytes(&self) -> usize {
                std::mem::size_of_val(self.data.as_slice())
            }
        }
    };
}

#[macro_use]
pub mod simd;
pub mod attention;
pub mod attention_f32;
pub mod attention_split;
pub mod binary;
pub mod cast;
pub mod cmp;
pub mod copy;
#[cfg(target_arch = "x86_64")]
pub mod exp_f32_avx2;
pub mod index;
pub mod issue_rate;
pub mod matmul;
pub mod matmul_bf16;
pub mod matmul_f32_avx2;
pub mod matmul_rows;
pub mod matmul_strips;
pub mod matmul_widen;
pub mod matvec;
pub mod norm;
pub mod qdot;
pub mod qdot_i16;
pub mod qgemm_i16;
pub mod qmatmul;
pub mod qpack;
pub mod reduce;
pub mod rope;
pub mod softmax;
#[cfg(target_arch = "x86_64")]
pub mod softmax_f32_avx2;
pub mod unary;

use crate::par::{chunks_mut, zip_chunks_mut};
use crate::storage::Elem;
use half::{bf16, f16};

/// Elements per parallel task for cheap elementwise work.
pub const PAR_CHUNK: usize = 1 << 15;

/// The accumulator / compute type of a float dtype: f32 for f16/bf16/f32, f64 for f64.
pub trait Acc:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    const NAN: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn erf(self) -> Self;
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;
    /// exp for arguments ≤ 0 (softmax after subtracting the row max); -inf → 0. f32 computes
    /// its polynomial's products and sums as `M` says.
    fn exp_nonpos<M: plumb_core::math::MulAdd>(self) -> Self;
    /// max that propagates NaN (PyTorch semantics)
    fn max_nan(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            Self::NAN
        } else if o > self {
            o
        } else {
            self
        }
    }
    /// min that propagates NaN
    fn min_nan(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            Self::NAN
        } else if o < self {
            o
        } else {
            self
        }
    }
}

macro_rules! acc {
    ($t:ty, $erf:expr, $exp:expr, $exp_nonpos:expr) => {
        impl Acc for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            const NAN: Self = <$t>::NAN;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                ($exp)(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                ($erf)(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn exp_nonpos<M: plumb_core::math::MulAdd>(self) -> Self {
                ($exp_nonpos)(self)
            }
        }
    };
}
acc!(
    f32,
    plumb_core::math::erf_f32,
    plumb_core::math::exp_f32,
    plumb_core::math::exp_nonpos_f32_in::<M>
);

/// f16 bits → f32, exact, branch-light so per-element loops vectorise (`half`'s `to_f32` is a
/// `const fn` software path that does not): the exponent and mantissa are shifted into f32
/// position and rescaled by 2^112, which also handles subnormals; inf/NaN keep all-ones exponents.
#[inline(always)]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let scaled = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    let v = if em >= 0x7c00 {
        f32::from_bits((em << 13) | 0x7f80_0000)
    } else {
        scaled
    };
    f32::from_bits(v.to_bits() | sign)
}

/// f32 → f16 bits with round-to-nearest-even (overflow → ±inf, NaN → quiet NaN), branch-light
/// (F. Giesen's float_to_half_fast3_rtne).
#[inline(always)]
pub fn f32_to_f16_bits(f: f32) -> u16 {
    const F32_INF: u32 = 255 << 23;
    const F16_MAX: u32 = (127 + 16) << 23;
    const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23;
    let bits = f.to_bits();
    let sign = bits & 0x8000_0000;
    let a = bits ^ sign;
    let o = if a >= F16_MAX {
        if a > F32_INF {
            0x7e00
        } else {
            0x7c00
        }
    } else if a < (113 << 23) {
        (f32::from_bits(a) + f32::from_bits(DENORM_MAGIC)).to_bits() - DENORM_MAGIC
    } else {
        let odd = (a >> 13) & 1;
        (a.wrapping_add((15u32.wrapping_sub(127) << 23).wrapping_add(0xfff)) + odd) >> 13
    };
    (o | (sign >> 16)) as u16
}
acc!(f64, plumb_core::math::erf, f64::exp, f64::exp);

/// A floating element type and its accumulator.
pub trait Float: Elem {
    type A: Acc;
    /// f16 / bf16: stored narrower than they are computed
    const IS_HALF: bool = false;
    fn to_acc(self) -> Self::A;
    fn from_acc(a: Self::A) -> Self;
    /// Widen a slice to f32 (SIMD conversions for halves), in parallel.
    fn slice_to_f32(x: &[Self]) -> Vec<f32> {
        par_map(x, |v: Self| v.to_acc().to_f64() as f32)
    }
    /// Narrow f32 values into this type (round to nearest even), in parallel.
    fn slice_from_f32(x: &[f32]) -> Vec<Self> {
        par_map(x, |v: f32| Self::from_acc(Self::A::from_f64(v as f64)))
    }
    /// `x` as f32 values: borrowed when this type is f32, widened otherwise.
    fn cow_to_f32(x: &[Self]) -> std::borrow::Cow<'_, [f32]> {
        std::borrow::Cow::Owned(Self::slice_to_f32(x))
    }
    /// f32 values as this type: the same vector when this type is f32, narrowed otherwise.
    fn vec_from_f32(x: Vec<f32>) -> Vec<Self> {
        Self::slice_from_f32(&x)
    }
}

impl Float for f32 {
    type A = f32;
    fn cow_to_f32(x: &[f32]) -> std::borrow::Cow<'_, [f32]> {
        std::borrow::Cow::Borrowed(x)
    }
    fn vec_from_f32(x: Vec<f32>) -> Vec<f32> {
        x
    }
    #[inline(always)]
    fn to_acc(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_acc(a: f32) -> f32 {
        a
    }
}
impl Float for f64 {
    type A = f64;
    #[inline(always)]
    fn to_acc(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_acc(a: f64) -> f64 {
        a
    }
}
impl Float for f16 {
    type A = f32;
    const IS_HALF: bool = true;
    #[inline(always)]
    fn to_acc(self) -> f32 {
        f16_bits_to_f32(self.to_bits())
    }
    #[inline(always)]
    fn from_acc(a: f32) -> f16 {
        f16::from_bits(f32_to_f16_bits(a))
    }
    // slice_to_f32 / slice_from_f32: the default per-element loops, which vectorise (16 lanes
    // with AVX-512), about twice as fast as `half`'s slice conversions here
}
impl Float for bf16 {
    type A = f32;
    const IS_HALF: bool = true;
    #[inline(always)]
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn from_acc(a: f32) -> bf16 {
        bf16::from_f32(a)
    }
    fn slice_to_f32(x: &[Self]) -> Vec<f32> {
        cast::bf16_to_f32(x)
    }
    // slice_from_f32: the default loop (vectorised; twice as fast as `half`'s slice conversion)
}

/// Ask for the cache line holding `p` ahead of its use (x86-64; elsewhere nothing). Row kernels
/// that pass over a row more than once (softmax, the norms) prefetch the next row during a pass
/// over the current one, so its first pass does not wait on memory: `bench_ops softmax` 15–17 →
/// 20–21 GB/s on the 2-core build machine.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Row `r` of the rows of `len` in `x`, and the row after it (empty for the last).
#[inline(always)]
pub fn row_and_next<T>(x: &[T], r: usize, len: usize) -> (&[T], &[T]) {
    let row = &x[r * len..(r + 1) * len];
    (row, x.get((r + 1) * len..(r + 2) * len).unwrap_or(&[]))
}

/// `out[i] = f(x[i])`, in parallel chunks.
pub fn par_map<S: Copy + Sync, D: crate::storage::Elem>(
    x: &[S],
    f: impl Fn(S) -> D + Sync,
) -> Vec<D> {
    let mut out = crate::storage::alloc_overwrite::<D>(x.len());
    zip_chunks_mut(&mut out, PAR_CHUNK, x, PAR_CHUNK, |o, i| {
        simd::map_chunk(o, i, &f)
    });
    out
}

/// `out[i] = f(a[i], b[i])`, in parallel chunks.
pub fn par_zip<S: Copy + Sync, D: crate::storage::Elem>(
    a: &[S],
    b: &[S],
    f: impl Fn(S, S) -> D + Sync,
) -> Vec<D> {
    let mut out = crate::storage::alloc_overwrite::<D>(a.len());
    chunks_mut(&mut out, PAR_CHUNK, |i, o| {
        let at = i * PAR_CHUNK..i * PAR_CHUNK + o.len();
        simd::zip_chunk(o, &a[at.clone()], &b[at], &f)
    });
    out
}

/// Rows per parallel task so that each task touches about `PAR_CHUNK` elements.
pub fn rows_per_task(row_len: usize) -> usize {
    (PAR_CHUNK / row_len.max(1)).max(1)
}

#[cfg(test)]
mod f16_tests {
    use super::{f16_bits_to_f32, f32_to_f16_bits};
    use half::f16;

    #[test]
    fn fast_f16_conversions_match_half_exactly() {
        for h in 0..=u16::MAX {
            let want = f16::from_bits(h).to_f32();
            let got = f16_bits_to_f32(h);
            assert!(
                want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                "{h:#06x}"
            );
        }
        // every f16 value, every midpoint between neighbours, and a sweep of f32 bit patterns
        let mut probes: Vec<f32> = (0..=u16::MAX).map(|h| f16::from_bits(h).to_f32()).collect();
        for h in 0..0x7bffu16 {
            let (a, b) = (f16::from_bits(h).to_f32(), f16::from_bits(h + 1).to_f32());
            probes.push((a + b) / 2.0);
            probes.push(-(a + b) / 2.0);
        }
        probes.extend((0..u32::MAX / 9973).map(|i| f32::from_bits(i * 9973)));
        probes.extend([
            f32::MAX,
            f32::MIN,
            65520.0,
            65519.99,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        for x in probes {
            let want = f16::from_f32(x);
            let got = f16::from_bits(f32_to_f16_bits(x));
            assert!(
                want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                "{x:e}: {want} vs {got}"
            );
        }
    }
}
