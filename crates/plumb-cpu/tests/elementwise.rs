//! Unary, binary, comparison, where and cast kernels against f64 references.

mod common;
use common::*;
use plumb_core::{BinaryOp, CmpOp, DType, Error, Tensor, UnaryOp};

fn domain(op: UnaryOp) -> (f64, f64) {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => (0.05, 9.0),
        UnaryOp::Recip => (0.5, 4.0),
        UnaryOp::Exp => (-8.0, 8.0),
        _ => (-5.0, 5.0),
    }
}

#[test]
fn unary_floats_contiguous_and_transposed() {
    let d = dev();
    for dt in FLOATS {
        for op in UnaryOp::ALL {
            let (lo, hi) = domain(op);
            let x = round(dt, &vals(35, 7, lo, hi));
            let t = tensor(&x, dt, &[5, 7], &d);
            let want: Vec<f64> = x.iter().map(|&v| op.reference(v)).collect();
            let got = read(&t.unary(op).unwrap());
            assert_close(&format!("{}_{dt}", op.name()), &got, &want, tol(dt));
            // transposed view: [7, 5]
            let got_t = read(&t.t().unwrap().unary(op).unwrap());
            let want_t = transpose(&want, 5, 7);
            assert_close(
                &format!("{}_{dt} transposed", op.name()),
                &got_t,
                &want_t,
                tol(dt),
            );
        }
    }
}

#[test]
fn unary_special_values() {
    let d = dev();
    let x = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0];
    for dt in FLOATS {
        let t = tensor(&x, dt, &[5], &d);
        for op in UnaryOp::ALL {
            // relu propagates NaN like PyTorch (the core reference's f64::max maps it to 0)
            let want: Vec<f64> = x
                .iter()
                .map(|&v| {
                    if op == UnaryOp::Relu && v.is_nan() {
                        v
                    } else {
                        op.reference(v)
                    }
                })
                .collect();
            let got = read(&t.unary(op).unwrap());
            // GELU/SiLU at ±inf: the f64 reference gives NaN for -inf·0; accept either behaviour
            // only there, everything else must match exactly in kind
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                if x[i].is_infinite()
                    && matches!(
                        op,
                        UnaryOp::Gelu | UnaryOp::GeluTanh | UnaryOp::Silu | UnaryOp::Sigmoid
                    )
                {
                    continue;
                }
                assert!(
                    (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() < 1e-6,
                    "{}_{dt}({}) = {g}, want {w}",
                    op.name(),
                    x[i]
                );
            }
        }
    }
}

#[test]
fn unary_ints() {
    let d = dev();
    for dt in [DType::I32, DType::I64] {
        let x = [-3.0, 0.0, 5.0, -7.0];
        let t = tensor(&x, dt, &[4], &d);
        assert_eq!(read(&t.neg().unwrap()), vec![3.0, 0.0, -5.0, 7.0]);
        assert_eq!(read(&t.abs().unwrap()), vec![3.0, 0.0, 5.0, 7.0]);
        assert_eq!(read(&t.relu().unwrap()), vec![0.0, 0.0, 5.0, 0.0]);
    }
    let t = tensor(&[i32::MIN as f64], DType::I32, &[1], &d);
    assert_eq!(read(&t.abs().unwrap()), vec![i32::MIN as f64], "abs wraps");
    let u = tensor(&[3.0, 200.0], DType::U8, &[2], &d);
    assert_eq!(read(&u.abs().unwrap()), vec![3.0, 200.0]);
    assert!(t.exp().is_err(), "exp on ints is refused");
}

#[test]
fn binary_floats_with_broadcast() {
    let d = dev();
    for dt in FLOATS {
        for op in BinaryOp::ALL {
            let a = round(dt, &vals(24, 1, 0.5, 3.0));
            let b = round(dt, &vals(8, 2, -2.0, 2.0));
            let b = if op == BinaryOp::Pow {
                b
            } else {
                b.iter().map(|v| v + 0.1).collect()
            };
            // a [3, 2, 4] (op) b [2, 4] broadcast over dim 0
            let ta = tensor(&a, dt, &[3, 2, 4], &d);
            let tb = tensor(&b, dt, &[2, 4], &d);
            let want: Vec<f64> = (0..24).map(|i| op.reference(a[i], b[i % 8])).collect();
            let got = read(&ta.binary(op, &tb).unwrap());
            assert_close(&format!("{}_{dt}", op.name()), &got, &want, tol(dt) * 2.0);
            // reversed operands broadcast the left side
            let want_r: Vec<f64> = (0..24).map(|i| op.reference(b[i % 8], a[i])).collect();
            let got_r = read(&tb.binary(op, &ta).unwrap());
            assert_close(
                &format!("{}_{dt} reversed", op.name()),
                &got_r,
                &want_r,
                tol(dt) * 2.0,
            );
            // scalar and transposed operands
            let s = Tensor::scalar(1.5, dt, &d).unwrap();
            let want_s: Vec<f64> = a.iter().map(|&v| op.reference(v, 1.5)).collect();
            assert_close(
                "scalar",
                &read(&ta.binary(op, &s).unwrap()),
                &want_s,
                tol(dt) * 2.0,
            );
            let m = tensor(&a[..12], dt, &[3, 4], &d);
            let mt = m.t().unwrap(); // [4, 3]
            let n = tensor(&round(dt, &vals(12, 3, 0.5, 2.5)), dt, &[4, 3], &d);
            let nv = read(&n);
            let at = transpose(&a[..12], 3, 4);
            let want_t: Vec<f64> = (0..12).map(|i| op.reference(at[i], nv[i])).collect();
            assert_close(
                "transposed",
                &read(&mt.binary(op, &n).unwrap()),
                &want_t,
                tol(dt) * 2.0,
            );
        }
    }
}

#[test]
fn binary_nan_propagates() {
    let d = dev();
    for dt in FLOATS {
        let a = tensor(&[f64::NAN, 1.0, f64::INFINITY], dt, &[3], &d);
        let b = tensor(&[1.0, f64::NAN, f64::INFINITY], dt, &[3], &d);
        for op in [BinaryOp::Max, BinaryOp::Min, BinaryOp::Add] {
            let got = read(&a.binary(op, &b).unwrap());
            assert!(
                got[0].is_nan() && got[1].is_nan(),
                "{}_{dt}: {got:?}",
                op.name()
            );
        }
        let got = read(&a.sub(&b).unwrap());
        assert!(got[2].is_nan(), "inf - inf is NaN");
    }
}

#[test]
fn binary_ints_wrap_and_divide() {
    let d = dev();
    let a = tensor(&[7.0, -7.0, i32::MAX as f64, 9.0], DType::I32, &[4], &d);
    let b = tensor(&[2.0, 2.0, 1.0, -4.0], DType::I32, &[4], &d);
    assert_eq!(
        read(&a.div(&b).unwrap()),
        vec![3.0, -3.0, i32::MAX as f64, -2.0]
    );
    assert_eq!(
        read(&a.add(&b).unwrap()),
        vec![9.0, -5.0, i32::MIN as f64, 5.0]
    );
    assert_eq!(
        read(&a.maximum(&b).unwrap()),
        vec![7.0, 2.0, i32::MAX as f64, 9.0]
    );
    let u = tensor(&[250.0, 3.0], DType::U8, &[2], &d);
    let v = tensor(&[10.0, 5.0], DType::U8, &[2], &d);
    assert_eq!(read(&u.add(&v).unwrap()), vec![4.0, 8.0]);
    assert_eq!(read(&u.sub(&v).unwrap()), vec![240.0, 254.0]);
    let l = tensor(&[5.0, 6.0], DType::I64, &[2], &d);
    assert_eq!(read(&l.mul(&l).unwrap()), vec![25.0, 36.0]);
    let z = tensor(&[1.0, 0.0], DType::I64, &[2], &d);
    let err = l.div(&z).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { .. })
            && err.to_string().contains("division by zero"),
        "{err}"
    );
}

#[test]
fn comparisons_and_where() {
    let d = dev();
    let a = [1.0, 2.0, f64::NAN, -1.0, 3.0, 0.0];
    let b = [1.0, 3.0, f64::NAN, -2.0, 3.0, 0.5];
    for dt in DType::PLAIN {
        let (a, b): (Vec<f64>, Vec<f64>) = if dt.is_float() {
            (a.to_vec(), b.to_vec())
        } else {
            let f = |v: &[f64]| {
                round(
                    dt,
                    &v.iter()
                        .map(|x| if x.is_nan() { 4.0 } else { x.abs() })
                        .collect::<Vec<_>>(),
                )
            };
            (f(&a), f(&b))
        };
        let ta = tensor(&a, dt, &[2, 3], &d);
        let tb = tensor(&b, dt, &[2, 3], &d);
        for op in CmpOp::ALL {
            let got = read(&ta.cmp(op, &tb).unwrap());
            let want: Vec<f64> = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| op.reference(x, y) as u8 as f64)
                .collect();
            assert_eq!(got, want, "{}_{dt}", op.name());
        }
        // where with a broadcast condition [3] over [2, 3]
        let c = tensor(&[1.0, 0.0, 1.0], DType::Bool, &[3], &d);
        let got = read(&c.where_cond(&ta, &tb).unwrap());
        let want: Vec<f64> = (0..6)
            .map(|i| if i % 3 != 1 { a[i] } else { b[i] })
            .collect();
        assert_close(&format!("where_{dt}"), &got, &want, 0.0);
    }
}

/// The documented cast rule, written out independently of the kernels.
fn cast_ref(v: f64, to: DType) -> f64 {
    let sat = |lo: f64, hi: f64| {
        if v.is_nan() {
            0.0
        } else {
            v.trunc().clamp(lo, hi)
        }
    };
    match to {
        DType::Bool => (v != 0.0) as u8 as f64,
        DType::U8 => sat(0.0, 255.0),
        DType::I32 => sat(i32::MIN as f64, i32::MAX as f64),
        DType::I64 => sat(-9.223372036854776e18, 9.223372036854776e18),
        DType::F16 => half::f16::from_f64(v).to_f64(),
        DType::BF16 => half::bf16::from_f64(v).to_f64(),
        DType::F32 => v as f32 as f64,
        _ => v,
    }
}

#[test]
fn casts_round_and_saturate() {
    let d = dev();
    let src = [
        0.0,
        1.0,
        -1.0,
        2.5,
        -2.5,
        2.7,
        -2.7,
        300.0,
        -300.0,
        1e10,
        -1e10,
        65519.0,
        1.0 + 1e-3,
        0.1,
    ];
    let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    for from in DType::PLAIN {
        let mut x: Vec<f64> = src.to_vec();
        if from.is_float() {
            x.extend(specials);
        }
        let x = round(from, &x);
        let t = tensor(&x, from, &[x.len()], &d);
        for to in DType::PLAIN {
            let got = read(&t.to_dtype(to).unwrap());
            let want: Vec<f64> = x.iter().map(|&v| cast_ref(v, to)).collect();
            assert_close(&format!("cast {from} -> {to}"), &got, &want, 0.0);
            // strided source
            let tr = t.narrow(0, 1, x.len() - 2).unwrap();
            let got = read(&tr.to_dtype(to).unwrap());
            assert_close(
                &format!("cast {from} -> {to} (narrowed)"),
                &got,
                &want[1..x.len() - 1],
                0.0,
            );
        }
    }
    // round-to-nearest-even into halves: 1 + 2^-11 is a tie in f16, 1 + 3·2^-11 rounds up
    let t = tensor(
        &[1.0 + 2f64.powi(-11), 1.0 + 3.0 * 2f64.powi(-11)],
        DType::F32,
        &[2],
        &d,
    );
    assert_eq!(
        read(&t.to_dtype(DType::F16).unwrap()),
        vec![1.0, 1.0 + 2.0 * 2f64.powi(-10)]
    );
    // i64 → i32 saturates, exact i64 values survive i64 → i64 paths
    let big = Tensor::from_slice(&[i64::MAX, -5_000_000_000i64], [2], &d).unwrap();
    let got: Vec<i32> = big.to_dtype(DType::I32).unwrap().to_vec().unwrap();
    assert_eq!(got, vec![i32::MAX, i32::MIN]);
    let got: Vec<u8> = big.to_dtype(DType::U8).unwrap().to_vec().unwrap();
    assert_eq!(got, vec![255, 0]);
}

#[test]
fn empty_and_size_one() {
    let d = dev();
    for dt in FLOATS {
        let e = Tensor::zeros([0, 3], dt, &d).unwrap();
        assert_eq!(e.exp().unwrap().shape(), &[0, 3]);
        assert_eq!(e.add(&e).unwrap().numel(), 0);
        assert_eq!(e.to_dtype(DType::I32).unwrap().numel(), 0);
        let one = tensor(&[2.0], dt, &[1, 1, 1], &d);
        assert_eq!(read(&one.mul(&one).unwrap()), vec![4.0]);
        let s = Tensor::scalar(3.0, dt, &d).unwrap();
        assert_eq!(read(&s.neg().unwrap()), vec![-3.0]);
    }
}

#[test]
fn contiguous_copies_of_transposed_and_broadcast_views() {
    let d = dev();
    let (b, r, c) = (3, 45, 70);
    let x = vals(b * r * c, 77, -1.0, 1.0);
    for dt in [DType::F32, DType::BF16, DType::I64] {
        let x = round(dt, &x);
        let t = tensor(&x, dt, &[b, r, c], &d);
        let got = read(&t.transpose(1, 2).unwrap().contiguous().unwrap());
        let want: Vec<f64> = (0..b)
            .flat_map(|i| transpose(&x[i * r * c..(i + 1) * r * c], r, c))
            .collect();
        assert_eq!(got, want, "transposed copy {dt}");
        // permute the batch dim inwards: [r, b, c] with the last dim contiguous
        let got = read(&t.permute([1, 0, 2]).unwrap().contiguous().unwrap());
        let want: Vec<f64> = (0..r)
            .flat_map(|i| (0..b).flat_map(move |j| (0..c).map(move |k| (j, i, k))))
            .map(|(j, i, k)| x[(j * r + i) * c + k])
            .collect();
        assert_eq!(got, want, "permuted copy {dt}");
        let row = tensor(&x[..c], dt, &[1, c], &d);
        let got = read(&row.broadcast_as([4, c]).unwrap().contiguous().unwrap());
        assert_eq!(got, x[..c].repeat(4), "broadcast copy {dt}");
    }
}
