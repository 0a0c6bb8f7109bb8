//! Reductions, softmax / log-softmax and the norms against f64 references.

mod common;
use common::*;
use plumb_core::{DType, ReduceOp, Tensor};

/// f64 reference reduction of a row-major [a, b, c] array over `dim`.
fn reduce_ref(x: &[f64], shape: [usize; 3], dim: usize, op: ReduceOp) -> Vec<f64> {
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let len = shape[dim];
    let mut out = Vec::new();
    for o in 0..outer {
        for i in 0..inner {
            let row: Vec<f64> = (0..len).map(|j| x[(o * len + j) * inner + i]).collect();
            out.push(match op {
                ReduceOp::Sum => row.iter().sum(),
                ReduceOp::Mean => row.iter().sum::<f64>() / len as f64,
                ReduceOp::Max => row.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                ReduceOp::Min => row.iter().cloned().fold(f64::INFINITY, f64::min),
                ReduceOp::ArgMax => {
                    let mut best = 0;
                    for j in 1..len {
                        if row[j] > row[best] {
                            best = j;
                        }
                    }
                    best as f64
                }
            });
        }
    }
    out
}

#[test]
fn reductions_over_every_dim() {
    let d = dev();
    let shape = [3, 4, 5];
    for dt in [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::U8,
        DType::I32,
        DType::I64,
    ] {
        let x = if dt.is_float() {
            round(dt, &vals(60, 11, -4.0, 4.0))
        } else {
            round(dt, &vals(60, 11, 0.0, 9.0))
        };
        let t = tensor(&x, dt, &shape, &d);
        for op in ReduceOp::ALL {
            if op == ReduceOp::Mean && !dt.is_float() {
                continue;
            }
            for dim in 0..3 {
                let want = reduce_ref(&x, shape, dim, op);
                let got = read(&t.reduce(op, dim as isize, false).unwrap());
                let tl = if op == ReduceOp::ArgMax {
                    0.0
                } else {
                    tol(dt) * 2.0
                };
                assert_close(&format!("{}_{dt} dim {dim}", op.name()), &got, &want, tl);
                // through a permuted (non-contiguous) view: reduce dim of the permuted tensor
                let p = t.permute([2, 0, 1]).unwrap(); // [5, 3, 4]
                let pd = [1, 2, 0][dim];
                let got_p = read(&p.reduce(op, pd as isize, false).unwrap());
                let mut want_p = want.clone();
                // reorder reference output to the permuted layout
                let kept: Vec<usize> = (0..3).filter(|&k| k != dim).collect();
                let ks = [shape[kept[0]], shape[kept[1]]];
                // permuted kept dims order: dims of [2,0,1] except `dim`
                let pkept: Vec<usize> = [2, 0, 1].into_iter().filter(|&k| k != dim).collect();
                if pkept != kept {
                    want_p = transpose(&want, ks[0], ks[1]);
                }
                assert_close(
                    &format!("{}_{dt} permuted dim {dim}", op.name()),
                    &got_p,
                    &want_p,
                    tl,
                );
            }
        }
    }
}

#[test]
fn reductions_nan_argmax_ties_and_empty() {
    let d = dev();
    for dt in FLOATS {
        let t = tensor(&[1.0, f64::NAN, 3.0, 3.0, 2.0, 3.0], dt, &[2, 3], &d);
        let mx = read(&t.max(1, false).unwrap());
        assert!(mx[0].is_nan() && mx[1] == 3.0, "{dt} max {mx:?}");
        let mn = read(&t.min(1, false).unwrap());
        assert!(mn[0].is_nan() && mn[1] == 2.0);
        assert!(read(&t.sum(1, false).unwrap())[0].is_nan());
        // first maximum, and a NaN counts as the maximum (PyTorch)
        let am = t.argmax(1, false).unwrap();
        assert_eq!(am.dtype(), DType::I64);
        assert_eq!(read(&am), vec![1.0, 0.0]);
        let e = Tensor::zeros([2, 0], dt, &d).unwrap();
        assert_eq!(read(&e.sum(1, false).unwrap()), vec![0.0, 0.0]);
        assert!(read(&e.mean(1, false).unwrap())[0].is_nan());
        assert!(e.max(1, false).is_err());
    }
    // a long f32 row sums accurately
    let n = 100_000;
    let x = vals(n, 5, 0.0, 1.0);
    let t = tensor(&x, DType::F32, &[n], &d);
    let want: f64 = round(DType::F32, &x).iter().sum();
    assert_close("long sum", &read(&t.sum(0, false).unwrap()), &[want], 1e-6);
}

fn softmax_ref(row: &[f64], log: bool) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if row.iter().any(|v| v.is_nan()) || !m.is_finite() {
        return vec![f64::NAN; row.len()];
    }
    let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
    row.iter()
        .map(|v| {
            if log {
                v - m - s.ln()
            } else {
                (v - m).exp() / s
            }
        })
        .collect()
}

#[test]
fn softmax_and_log_softmax() {
    let d = dev();
    for dt in FLOATS {
        for log in [false, true] {
            let (r, c) = (6, 37);
            let mut x = round(dt, &vals(r * c, 3, -6.0, 6.0));
            // large values, masked entries, NaN and +inf rows
            for j in 0..c {
                x[c + j] = round(dt, &[1e4 - j as f64 * 10.0])[0];
            }
            x[2 * c + 3] = f64::NEG_INFINITY;
            x[3 * c + 5] = f64::NAN;
            x[4 * c] = f64::INFINITY;
            for j in 0..c {
                x[5 * c + j] = f64::NEG_INFINITY;
            }
            let t = tensor(&x, dt, &[r, c], &d);
            let got = read(
                &if log {
                    t.log_softmax(-1)
                } else {
                    t.softmax(-1)
                }
                .unwrap(),
            );
            let want: Vec<f64> = x.chunks(c).flat_map(|row| softmax_ref(row, log)).collect();
            assert_close(
                &format!("softmax_{dt} log={log}"),
                &got,
                &want,
                tol(dt) * 2.0,
            );
            // over dim 0 (a transposed view inside core)
            let got0 = read(&if log { t.log_softmax(0) } else { t.softmax(0) }.unwrap());
            let xt = transpose(&x, r, c);
            let want0: Vec<f64> = xt.chunks(r).flat_map(|row| softmax_ref(row, log)).collect();
            assert_close(
                &format!("softmax_{dt} dim 0"),
                &got0,
                &transpose(&want0, c, r),
                tol(dt) * 2.0,
            );
        }
        let e = Tensor::zeros([2, 0], dt, &d).unwrap();
        assert_eq!(e.softmax(-1).unwrap().numel(), 0);
    }
}

#[test]
fn layer_norm_and_rms_norm() {
    let d = dev();
    for dt in FLOATS {
        let (r, c) = (5, 67);
        let x = round(dt, &vals(r * c, 21, -3.0, 5.0));
        let w = round(dt, &vals(c, 22, 0.5, 1.5));
        let b = round(dt, &vals(c, 23, -1.0, 1.0));
        let t = tensor(&x, dt, &[r, c], &d);
        let tw = tensor(&w, dt, &[c], &d);
        let tb = tensor(&b, dt, &[c], &d);
        let eps = 1e-5;
        for (hw, hb) in [(true, true), (true, false), (false, true), (false, false)] {
            let got = read(
                &t.layer_norm(hw.then_some(&tw), hb.then_some(&tb), eps)
                    .unwrap(),
            );
            let mut want = Vec::new();
            for row in x.chunks(c) {
                let mean = row.iter().sum::<f64>() / c as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
                for j in 0..c {
                    let mut y = (row[j] - mean) / (var + eps).sqrt();
                    if hw {
                        y *= w[j];
                    }
                    if hb {
                        y += b[j];
                    }
                    want.push(y);
                }
            }
            assert_close(
                &format!("layer_norm_{dt} w={hw} b={hb}"),
                &got,
                &want,
                tol(dt) * 4.0,
            );
        }
        for hw in [true, false] {
            let got = read(&t.rms_norm(hw.then_some(&tw), eps).unwrap());
            let mut want = Vec::new();
            for row in x.chunks(c) {
                let ms = row.iter().map(|v| v * v).sum::<f64>() / c as f64;
                for j in 0..c {
                    want.push(row[j] / (ms + eps).sqrt() * if hw { w[j] } else { 1.0 });
                }
            }
            assert_close(&format!("rms_norm_{dt} w={hw}"), &got, &want, tol(dt) * 4.0);
        }
        // non-contiguous input: a transposed [c, r] → [r, c]
        let tt = tensor(&transpose(&x, r, c), dt, &[c, r], &d).t().unwrap();
        let a = read(&tt.rms_norm(Some(&tw), eps).unwrap());
        let b2 = read(&t.rms_norm(Some(&tw), eps).unwrap());
        assert_close("rms_norm strided", &a, &b2, 0.0);
    }
}
