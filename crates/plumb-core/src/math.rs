//! Scalar math shared by backends and references.

/// erf with about 1e-16 relative accuracy (W. J. Cody's rational approximations are overkill;
/// this uses the series for small |x| and a continued fraction erfc for large |x|).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
            n += 1.0;
            term *= -x2 / n;
            if n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if ax > 6.0 {
        1.0
    } else {
        // continued fraction for erfc (Lentz), converges quickly for x >= 2.5
        let x2 = ax * ax;
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 * 0.5;
            d = ax + a * d;
            d = 1.0 / d;
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-x2).exp() / (f * std::f64::consts::PI.sqrt())
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// erf in f32 arithmetic: Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7 before rounding, about
/// 5e-7 in f32), branch-free apart from the sign so loops over it vectorise. Its absolute error is
/// far inside f32's 1e-5 tolerance; the f64 oracle uses [`erf`].
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152,
        1.061_405_4,
    ];
    let ax = x.abs();
    let t = 1.0 / (1.0 + P * ax);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp_f32(-ax * ax);
    y.copysign(x)
}

/// `e^x` in f32, written so the compiler vectorises it (Cephes' expf polynomial, about 1 ulp):
/// x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial, 2^n built in the exponent bits.
/// Results below the smallest normal f32 flush to 0, above f32::MAX give +inf; NaN gives NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const HI: f32 = 88.72;
    let (er, ni) = exp_parts::<Separate>(x.clamp(EXP_LO, HI));
    // 2^n in two halves so n = 128 (x near HI) does not overflow the exponent field
    let h = ni >> 1;
    let y = er * pow2(h) * pow2(ni.wrapping_sub(h));
    let y = if x < EXP_LO { 0.0 } else { y };
    let y = if x > HI { f32::INFINITY } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// [`exp_f32`] for x ≤ 0 (softmax's `x − max`): the same polynomial and the same results there,
/// without the work for large x (positive x is taken as 0). 2^n is one exponent-bit product, as
/// n ≥ −126 keeps it normal.
#[inline(always)]
pub fn exp_nonpos_f32(x: f32) -> f32 {
    exp_nonpos_f32_in::<Separate>(x)
}

/// [`exp_nonpos_f32`] with its products and sums computed as `M` says: [`Fused`] in code
/// compiled for a CPU with FMA (about 1/3 fewer instructions: softmax over 4096 × 4096 on the
/// 2-core build machine, `bench_ops softmax`, 25.7–26.8 → 31.2–31.9 GB/s), [`Separate`] elsewhere.
#[inline(always)]
pub fn exp_nonpos_f32_in<M: MulAdd>(x: f32) -> f32 {
    let (er, ni) = exp_parts::<M>(x.clamp(EXP_LO, 0.0));
    let y = er * pow2(ni);
    let y = if x < EXP_LO { 0.0 } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// How the polynomials here compute `a · b + c`.
pub trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// One rounding (`f32::mul_add`). Use it only in code compiled for a CPU with FMA instructions:
/// without them each call is a library call, far slower than [`Separate`].
pub struct Fused;
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// A product and a sum, each rounded: fast on every CPU.
pub struct Separate;
impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Below this e^x is under the smallest normal f32.
const EXP_LO: f32 = -87.33;

/// e^xc = e^r · 2^n for a finite, clamped xc: (e^r, n).
#[inline(always)]
fn exp_parts<M: MulAdd>(xc: f32) -> (f32, i32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let t = M::mul_add(xc, LOG2E, MAGIC);
    let n = t - MAGIC;
    // the integer n sits in the low mantissa bits of t (no float → int conversion needed)
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let r = M::mul_add(-n, C2, M::mul_add(-n, C1, xc));
    let mut p = 1.987_569_1e-4_f32;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = M::mul_add(p, r, c);
    }
    (M::mul_add(p * r, r, r) + 1.0, ni)
}

/// 2^n for −126 ≤ n ≤ 127, from the exponent bits.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn erf_known_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (3.0, 0.9999779095030014),
            (-1.0, -0.8427007929497149),
        ];
        for (x, e) in cases {
            assert!((super::erf(x) - e).abs() < 1e-14, "erf({x})");
        }
    }

    #[test]
    fn exp_f32_is_within_2_ulp_of_exp() {
        let mut worst = 0f64;
        for i in -87_000..=88_000 {
            let x = i as f32 * 1e-3;
            let e = (x as f64).exp();
            let rel = ((super::exp_f32(x) as f64 - e) / e).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(super::exp_f32(0.0), 1.0);
        assert_eq!(super::exp_f32(-100.0), 0.0);
        assert_eq!(super::exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp_f32(89.0), f32::INFINITY);
        assert_eq!(super::exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(super::exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_nonpos_f32_equals_exp_f32_for_nonpositive_x() {
        for i in 0..=100_000 {
            let x = -(i as f32) * 1e-3;
            assert_eq!(
                super::exp_nonpos_f32(x).to_bits(),
                super::exp_f32(x).to_bits(),
                "x = {x}"
            );
        }
        for x in [-87.33f32, -87.34, -1e-40, -0.0, f32::MIN, f32::NEG_INFINITY] {
            assert_eq!(super::exp_nonpos_f32(x), super::exp_f32(x), "x = {x}");
        }
        assert!(super::exp_nonpos_f32(f32::NAN).is_nan());
        assert_eq!(super::exp_nonpos_f32(3.0), 1.0, "positive x is taken as 0");
    }

    #[test]
    fn fused_exp_nonpos_f32_is_within_2_ulp_of_exp() {
        use super::{exp_nonpos_f32_in, Fused};
        let mut worst = 0f64;
        for i in 0..=87_000 {
            let x = -(i as f32) * 1e-3;
            let e = (x as f64).exp();
            let rel = ((exp_nonpos_f32_in::<Fused>(x) as f64 - e) / e).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp_nonpos_f32_in::<Fused>(0.0), 1.0);
        assert_eq!(exp_nonpos_f32_in::<Fused>(-100.0), 0.0);
        assert_eq!(exp_nonpos_f32_in::<Fused>(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpos_f32_in::<Fused>(f32::NAN).is_nan());
        assert_eq!(
            exp_nonpos_f32_in::<Fused>(3.0),
            1.0,
            "positive x is taken as 0"
        );
    }

    #[test]
    fn erf_f32_is_within_5e_7_of_erf() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f64 * 1e-3;
            let err = (super::erf_f32(x as f32) as f64 - super::erf(x)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "worst |erf_f32 - erf| = {worst:e}");
        assert!(super::erf_f32(f32::NAN).is_nan());
        assert_eq!(super::erf_f32(f32::INFINITY), 1.0);
        assert_eq!(super::erf_f32(f32::NEG_INFINITY), -1.0);
    }
}
