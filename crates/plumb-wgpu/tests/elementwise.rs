//! Upload/download, fill, unary, binary, cmp, where, cast and copies on every adapter found,
//! against f64 references computed here.
mod common;
use common::{assert_close, rounded, t, values};
use plumb_core::{BinaryOp, CmpOp, DType, OpFamily, Tensor, UnaryOp};

const FLOATS: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

#[test]
fn upload_download_and_fill_round_trip_every_dtype() {
    for (label, d) in common::devices() {
        for dt in DType::PLAIN {
            for n in [1usize, 3, 5, 8, 33] {
                let v: Vec<f64> = (0..n).map(|i| (i as f64 * 7.0) % 5.0).collect();
                let x = t(&v, dt, &[n], &d);
                assert_eq!(
                    x.to_f64_vec().unwrap(),
                    rounded(&v, dt),
                    "{label} {dt} n={n}"
                );
                let f = Tensor::full(3.0, [n], dt, &d).unwrap();
                let want = rounded(&vec![3.0; n], dt);
                assert_eq!(f.to_f64_vec().unwrap(), want, "{label} full {dt} n={n}");
            }
        }
        let q = Tensor::from_f64(&values(64, 3, -1.0, 1.0), DType::Q4_1, [2, 32], &d).unwrap();
        let host =
            plumb_core::convert::f64_to_bytes(DType::Q4_1, &values(64, 3, -1.0, 1.0)).unwrap();
        assert_eq!(q.to_bytes().unwrap(), host, "{label} q4_1 bytes");
    }
}

fn unary_input(op: UnaryOp, n: usize) -> Vec<f64> {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Recip => values(n, 5, 0.1, 4.0),
        _ => values(n, 5, -4.0, 4.0),
    }
}

#[test]
fn unary_ops_match_the_reference() {
    for (label, d) in common::devices() {
        for dt in FLOATS {
            for op in UnaryOp::ALL {
                let v = rounded(&unary_input(op, 45), dt);
                // a transposed view exercises the strided variant
                let x = t(&v, dt, &[5, 9], &d);
                for (view, src) in [
                    (x.clone(), v.clone()),
                    (x.t().unwrap(), transpose(&v, 5, 9)),
                ] {
                    let y = view.unary(op).unwrap();
                    let want: Vec<f64> = src.iter().map(|&a| op.reference(a)).collect();
                    let scale = if dt == DType::F32 { 2.0 } else { 1.0 };
                    assert_close(
                        &format!("{label} {} {dt}", op.name()),
                        &y.to_f64_vec().unwrap(),
                        &rounded(&want, dt),
                        dt,
                        scale,
                    );
                }
            }
        }
        for dt in [DType::I32, DType::I64] {
            let v: Vec<f64> = (0..11).map(|i| i as f64 - 5.0).collect();
            let x = t(&v, dt, &[11], &d);
            for op in [UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Relu] {
                match x.unary(op) {
                    Ok(y) => {
                        let want: Vec<f64> = v.iter().map(|&a| op.reference(a)).collect();
                        assert_eq!(y.to_f64_vec().unwrap(), want, "{label} {} {dt}", op.name());
                    }
                    Err(e) => {
                        assert!(
                            !d.supports(OpFamily::Elementwise, dt).is_runnable(),
                            "{label}: {e}"
                        );
                        println!("skipped: {label} {} {dt}: {e}", op.name());
                    }
                }
            }
        }
    }
}

fn transpose(v: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c)
        .flat_map(|j| (0..r).map(move |i| v[i * c + j]))
        .collect()
}

#[test]
fn binary_cmp_where_with_broadcasts() {
    for (label, d) in common::devices() {
        for dt in [DType::F32, DType::F16, DType::BF16, DType::I32, DType::U8] {
            let int = !dt.is_float();
            let (lo, hi) = if int { (1.0, 9.0) } else { (-3.0, 3.0) };
            let a: Vec<f64> = rounded(&values(21, 7, lo, hi), dt)
                .iter()
                .map(|x| if int { x.floor() } else { *x })
                .collect();
            let b: Vec<f64> = rounded(&values(7, 8, lo, hi), dt)
                .iter()
                .map(|x| if int { x.floor() } else { *x })
                .collect();
            let ta = t(&a, dt, &[3, 7], &d);
            let tb = t(&b, dt, &[7], &d); // broadcast over rows
            for op in BinaryOp::ALL {
                if op == BinaryOp::Pow && int {
                    continue;
                }
                if int && matches!(op, BinaryOp::Div | BinaryOp::Sub) {
                    continue; // integer division/wrapping rules are the CPU backend's to define
                }
                let y = ta.binary(op, &tb).unwrap().to_f64_vec().unwrap();
                let want: Vec<f64> = (0..21).map(|i| op.reference(a[i], b[i % 7])).collect();
                let want = if dt == DType::U8 {
                    want.iter().map(|w| w.rem_euclid(256.0)).collect()
                } else {
                    rounded(&want, dt)
                };
                assert_close(&format!("{label} {} {dt}", op.name()), &y, &want, dt, 2.0);
            }
            for op in CmpOp::ALL {
                let y = ta.cmp(op, &tb).unwrap();
                assert_eq!(y.dtype(), DType::Bool);
                let want: Vec<f64> = (0..21)
                    .map(|i| op.reference(a[i], b[i % 7]) as u8 as f64)
                    .collect();
                assert_eq!(y.to_f64_vec().unwrap(), want, "{label} {} {dt}", op.name());
            }
            let cond = ta.cmp(CmpOp::Gt, &tb).unwrap();
            let w = cond
                .where_cond(&ta, &tb.broadcast_as([3, 7]).unwrap())
                .unwrap();
            let want: Vec<f64> = (0..21)
                .map(|i| if a[i] > b[i % 7] { a[i] } else { b[i % 7] })
                .collect();
            assert_eq!(w.to_f64_vec().unwrap(), want, "{label} where {dt}");
        }
        // NaN propagates through maximum
        let x = Tensor::from_slice(&[1.0f32, f32::NAN, 3.0], [3], &d).unwrap();
        let y = Tensor::from_slice(&[2.0f32, 0.0, f32::NAN], [3], &d).unwrap();
        let m = x.maximum(&y).unwrap().to_vec::<f32>().unwrap();
        assert!(
            m[0] == 2.0 && m[1].is_nan() && m[2].is_nan(),
            "{label}: {m:?}"
        );
    }
}

#[test]
fn casts_between_dtypes() {
    let src = [
        -300.5, -2.7, -1.0, -0.0, 0.0, 0.4, 1.5, 2.5, 65504.0, 1e-6, 70000.0, 255.9,
    ];
    for (label, d) in common::devices() {
        for from in DType::PLAIN {
            for to in DType::PLAIN {
                if from == to
                    || !d.supports(OpFamily::Cast, from).is_runnable()
                    || !d.supports(OpFamily::Cast, to).is_runnable()
                {
                    continue;
                }
                let v = rounded(&src, from);
                let x = t(&v, from, &[src.len()], &d);
                let y = match x.to_dtype(to) {
                    Ok(y) => y.to_f64_vec().unwrap(),
                    Err(e) => panic!("{label} cast {from}->{to}: {e}"),
                };
                // the host encoder implements the documented cast rules
                let want = rounded(&v, to);
                assert_close(&format!("{label} cast {from}->{to}"), &y, &want, to, 1.0);
            }
        }
        // f16 <-> f32 is always runnable, also without SHADER_F16 (that is how f16 upcasts)
        let h = t(&[1.0, 2.5, -0.1], DType::F16, &[3], &d);
        assert_eq!(
            h.to_dtype(DType::F32).unwrap().dtype(),
            DType::F32,
            "{label}"
        );
        // bf16 rounds to nearest even: 1 + 2^-8 is a tie between 1 and 1 + 2^-7
        let b = t(
            &[1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0],
            DType::F32,
            &[2],
            &d,
        )
        .to_dtype(DType::BF16)
        .unwrap();
        assert_eq!(
            b.to_f64_vec().unwrap(),
            vec![1.0, 1.0 + 4.0 / 256.0],
            "{label}"
        );
    }
}

#[test]
fn strided_copies_and_cat() {
    for (label, d) in common::devices() {
        for dt in [DType::U8, DType::F16, DType::BF16, DType::F32, DType::I64] {
            let v: Vec<f64> = (0..60).map(|i| (i % 50) as f64).collect();
            let x = t(&v, dt, &[3, 4, 5], &d);
            let p = x.permute([2, 0, 1]).unwrap().contiguous().unwrap();
            let want: Vec<f64> = (0..5)
                .flat_map(|k| {
                    (0..3)
                        .flat_map(move |i| (0..4).map(move |j| ((i * 20 + j * 5 + k) % 50) as f64))
                })
                .collect();
            assert_eq!(p.to_f64_vec().unwrap(), want, "{label} permute {dt}");
            let n = x.narrow(2, 1, 3).unwrap();
            let want: Vec<f64> = (0..3)
                .flat_map(|i| {
                    (0..4)
                        .flat_map(move |j| (1..4).map(move |k| ((i * 20 + j * 5 + k) % 50) as f64))
                })
                .collect();
            assert_eq!(n.to_f64_vec().unwrap(), want, "{label} narrow {dt}");
            for dim in 0..3 {
                let a = x.narrow(dim as isize, 0, 1).unwrap();
                let c = Tensor::cat(&[&x, &a, &x], dim as isize).unwrap();
                let mut sh = vec![3, 4, 5];
                sh[dim] = 2 * sh[dim] + 1;
                assert_eq!(c.shape(), sh.as_slice());
                let got = c.to_f64_vec().unwrap();
                let cs = [sh[1] * sh[2], sh[2], 1];
                for i in 0..sh[0] {
                    for j in 0..sh[1] {
                        for k in 0..sh[2] {
                            let mut idx = [i, j, k];
                            let full = [3, 4, 5][dim];
                            let c0 = idx[dim];
                            idx[dim] = if c0 < full {
                                c0
                            } else if c0 == full {
                                0
                            } else {
                                c0 - full - 1
                            };
                            let w = v[idx[0] * 20 + idx[1] * 5 + idx[2]];
                            assert_eq!(
                                got[i * cs[0] + j * cs[1] + k],
                                w,
                                "{label} cat dim {dim} {dt} at {i},{j},{k}"
                            );
                        }
                    }
                }
            }
        }
    }
}
