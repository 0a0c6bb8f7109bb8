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
    let y = 1.0 - poly * (-ax * ax).exp();
    y.copysign(x)
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
