//! Reductions, softmax, norms, matmul, qmatmul, dequantize, indexing and rope on every adapter
//! found, against f64 references computed here.
mod common;
use common::{assert_close, rounded, t, values};
use plumb_core::{DType, ReduceOp, Tensor};

const FLOATS: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

#[test]
fn reductions_over_each_dim() {
    for (label, d) in common::devices() {
        for dt in [DType::F32, DType::F16, DType::BF16, DType::I32] {
            let shape = [3usize, 5, 7];
            let v: Vec<f64> = if dt == DType::I32 {
                values(105, 11, -50.0, 50.0)
                    .iter()
                    .map(|x| x.floor())
                    .collect()
            } else {
                rounded(&values(105, 11, -2.0, 2.0), dt)
            };
            let x = t(&v, dt, &shape, &d);
            for dim in 0..3 {
                for op in ReduceOp::ALL {
                    if op == ReduceOp::Mean && dt == DType::I32 {
                        continue;
                    }
                    let y = x.reduce(op, dim as isize, false).unwrap();
                    let mut want = Vec::new();
                    let st = [35usize, 7, 1];
                    for i in 0..105 / shape[dim] {
                        // enumerate the output positions in row-major order
                        let mut rem = i;
                        let mut idx = [0usize; 3];
                        for k in (0..3).rev() {
                            if k == dim {
                                continue;
                            }
                            idx[k] = rem % shape[k];
                            rem /= shape[k];
                        }
                        let run: Vec<f64> = (0..shape[dim])
                            .map(|r| {
                                let mut j = idx;
                                j[dim] = r;
                                v[j[0] * st[0] + j[1] * st[1] + j[2]]
                            })
                            .collect();
                        want.push(match op {
                            ReduceOp::Sum => run.iter().sum(),
                            ReduceOp::Mean => run.iter().sum::<f64>() / run.len() as f64,
                            ReduceOp::Max => run.iter().cloned().fold(f64::MIN, f64::max),
                            ReduceOp::Min => run.iter().cloned().fold(f64::MAX, f64::min),
                            ReduceOp::ArgMax => {
                                let mut b = 0;
                                for (k, &r) in run.iter().enumerate() {
                                    if r > run[b] {
                                        b = k;
                                    }
                                }
                                b as f64
                            }
                        });
                    }
                    let out_dt = y.dtype();
                    let want = if op == ReduceOp::ArgMax {
                        want
                    } else {
                        rounded(&want, dt)
                    };
                    assert_close(
                        &format!("{label} {} {dt} dim {dim}", op.name()),
                        &y.to_f64_vec().unwrap(),
                        &want,
                        out_dt,
                        4.0,
                    );
                }
            }
        }
        let big = t(&values(5000, 2, 0.0, 1.0), DType::F32, &[5000], &d);
        let s = big.sum_all().unwrap().to_scalar_f64().unwrap();
        let w: f64 = rounded(&values(5000, 2, 0.0, 1.0), DType::F32).iter().sum();
        assert!((s - w).abs() < 1e-3, "{label} sum_all {s} vs {w}");
    }
}

fn softmax_ref(row: &[f64], log: bool) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::MIN, f64::max);
    let s: f64 = row.iter().map(|x| (x - m).exp()).sum();
    row.iter()
        .map(|x| {
            if log {
                x - m - s.ln()
            } else {
                (x - m).exp() / s
            }
        })
        .collect()
}

#[test]
fn softmax_and_norms() {
    for (label, d) in common::devices() {
        for dt in FLOATS {
            for cols in [7usize, 8, 300] {
                let rows = 3;
                let v = rounded(&values(rows * cols, 4, -3.0, 3.0), dt);
                let x = t(&v, dt, &[rows, cols], &d);
                for log in [false, true] {
                    let y = if log {
                        x.log_softmax(-1)
                    } else {
                        x.softmax(-1)
                    }
                    .unwrap();
                    let want: Vec<f64> = v.chunks(cols).flat_map(|r| softmax_ref(r, log)).collect();
                    assert_close(
                        &format!("{label} softmax log={log} {dt} cols={cols}"),
                        &y.to_f64_vec().unwrap(),
                        &rounded(&want, dt),
                        dt,
                        4.0,
                    );
                }
                // softmax over dim 0 goes through a transposed (strided) view
                let y0 = x.softmax(0).unwrap().to_f64_vec().unwrap();
                for c in 0..cols {
                    let col: Vec<f64> = (0..rows).map(|r| v[r * cols + c]).collect();
                    let want = rounded(&softmax_ref(&col, false), dt);
                    let got: Vec<f64> = (0..rows).map(|r| y0[r * cols + c]).collect();
                    assert_close(&format!("{label} softmax dim0 {dt}"), &got, &want, dt, 4.0);
                }
                let w = rounded(&values(cols, 5, 0.5, 1.5), dt);
                let b = rounded(&values(cols, 6, -0.5, 0.5), dt);
                let (tw, tb) = (t(&w, dt, &[cols], &d), t(&b, dt, &[cols], &d));
                let ln = x.layer_norm(Some(&tw), Some(&tb), 1e-5).unwrap();
                let rn = x.rms_norm(Some(&tw), 1e-6).unwrap();
                let mut want_ln = Vec::new();
                let mut want_rn = Vec::new();
                for r in v.chunks(cols) {
                    let mean = r.iter().sum::<f64>() / cols as f64;
                    let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / cols as f64;
                    let ms = r.iter().map(|x| x * x).sum::<f64>() / cols as f64;
                    for (j, x) in r.iter().enumerate() {
                        want_ln.push((x - mean) / (var + 1e-5).sqrt() * w[j] + b[j]);
                        want_rn.push(x / (ms + 1e-6).sqrt() * w[j]);
                    }
                }
                assert_close(
                    &format!("{label} layer_norm {dt} cols={cols}"),
                    &ln.to_f64_vec().unwrap(),
                    &rounded(&want_ln, dt),
                    dt,
                    8.0,
                );
                assert_close(
                    &format!("{label} rms_norm {dt} cols={cols}"),
                    &rn.to_f64_vec().unwrap(),
                    &rounded(&want_rn, dt),
                    dt,
                    8.0,
                );
            }
        }
    }
}

fn matmul_ref(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for z in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(z * m + i) * n + j] = (0..k)
                    .map(|p| a[(z * m + i) * k + p] * b[(z * k + p) * n + j])
                    .sum();
            }
        }
    }
    out
}

#[test]
fn matmul_tiled_matvec_and_strided() {
    for (label, d) in common::devices() {
        for dt in FLOATS {
            for &(batch, m, k, n) in &[
                (1usize, 1usize, 40usize, 9usize),
                (2, 5, 17, 7),
                (1, 70, 33, 66),
                (3, 1, 64, 130),
                (1, 130, 20, 136),
                (2, 9, 8, 12),
                (1, 67, 12, 130),
                (1, 5, 8, 131),
            ] {
                let a = rounded(&values(batch * m * k, 1, -1.0, 1.0), dt);
                let b = rounded(&values(batch * k * n, 2, -1.0, 1.0), dt);
                let ta = t(&a, dt, &[batch, m, k], &d);
                let tb = t(&b, dt, &[batch, k, n], &d);
                let want = rounded(&matmul_ref(&a, &b, batch, m, k, n), dt);
                let y = ta.matmul(&tb).unwrap();
                assert_close(
                    &format!("{label} matmul {dt} {batch}x{m}x{k}x{n}"),
                    &y.to_f64_vec().unwrap(),
                    &want,
                    dt,
                    10.0 * (k as f64).sqrt(),
                );
                // b given as the transpose of a contiguous [n, k] tensor (the linear-layer case)
                let bt: Vec<f64> = (0..batch)
                    .flat_map(|z| {
                        let b = &b;
                        (0..n).flat_map(move |j| (0..k).map(move |p| b[(z * k + p) * n + j]))
                    })
                    .collect();
                let tbt = t(&bt, dt, &[batch, n, k], &d).t().unwrap();
                let y2 = ta.matmul(&tbt).unwrap();
                assert_close(
                    &format!("{label} matmul bT {dt} {batch}x{m}x{k}x{n}"),
                    &y2.to_f64_vec().unwrap(),
                    &want,
                    dt,
                    10.0 * (k as f64).sqrt(),
                );
            }
            // broadcast batch: [2, 3, 4] x [4, 5]
            let a = rounded(&values(24, 3, -1.0, 1.0), dt);
            let b = rounded(&values(20, 4, -1.0, 1.0), dt);
            let y = t(&a, dt, &[2, 3, 4], &d)
                .matmul(&t(&b, dt, &[4, 5], &d))
                .unwrap();
            let bb: Vec<f64> = b.iter().chain(b.iter()).cloned().collect();
            assert_close(
                &format!("{label} matmul broadcast {dt}"),
                &y.to_f64_vec().unwrap(),
                &rounded(&matmul_ref(&a, &bb, 2, 3, 4, 5), dt),
                dt,
                20.0,
            );
        }
    }
}

#[test]
fn quantized_matmul_and_dequantize() {
    for (label, d) in common::devices() {
        for qt in DType::QUANTIZED {
            for &(rows, n, k) in &[(1usize, 9usize, 64usize), (3, 16, 96), (2, 6, 1088)] {
                let wv = values(n * k, 9, -1.0, 1.0);
                let wq = Tensor::from_f64(&wv, qt, [n, k], &d).unwrap();
                let wd = plumb_core::convert::bytes_to_f64(
                    qt,
                    &plumb_core::convert::f64_to_bytes(qt, &wv).unwrap(),
                    n * k,
                )
                .unwrap();
                for xdt in [DType::F32, DType::F16] {
                    let xv = rounded(&values(rows * k, 10, -1.0, 1.0), xdt);
                    let x = t(&xv, xdt, &[rows, k], &d);
                    let y = x.qmatmul(&wq).unwrap();
                    let mut want = vec![0.0; rows * n];
                    for r in 0..rows {
                        for j in 0..n {
                            want[r * n + j] = (0..k).map(|p| xv[r * k + p] * wd[j * k + p]).sum();
                        }
                    }
                    assert_close(
                        &format!("{label} qmatmul {qt} x {xdt} {rows}x{n}x{k}"),
                        &y.to_f64_vec().unwrap(),
                        &rounded(&want, xdt),
                        xdt,
                        20.0,
                    );
                }
                let deq = wq.dequantize(DType::F32).unwrap().to_f64_vec().unwrap();
                assert_close(
                    &format!("{label} dequantize {qt}"),
                    &deq,
                    &rounded(&wd, DType::F32),
                    DType::F32,
                    1.0,
                );
                // a row slice of the weight (offset storage)
                let part = wq
                    .narrow(0, 2, 3)
                    .unwrap()
                    .dequantize(DType::F32)
                    .unwrap()
                    .to_f64_vec()
                    .unwrap();
                assert_close(
                    &format!("{label} dequantize narrow {qt}"),
                    &part,
                    &rounded(&wd[2 * k..5 * k], DType::F32),
                    DType::F32,
                    1.0,
                );
            }
        }
    }
}

#[test]
fn index_select_gather_embedding() {
    for (label, d) in common::devices() {
        for dt in [DType::F32, DType::F16, DType::U8, DType::I64] {
            let v: Vec<f64> = (0..24).map(|i| i as f64).collect();
            let x = t(&v, dt, &[4, 6], &d);
            for idt in [DType::I32, DType::I64, DType::U8] {
                let ids = t(&[3.0, 0.0, 3.0, 1.0], idt, &[4], &d);
                let r = x.index_select(&ids, 0).unwrap().to_f64_vec().unwrap();
                let want: Vec<f64> = [3, 0, 3, 1]
                    .iter()
                    .flat_map(|&i| (0..6).map(move |j| (i * 6 + j) as f64))
                    .collect();
                assert_eq!(r, want, "{label} index_select dim0 {dt} ids {idt}");
                let ids = t(&[5.0, 1.0], idt, &[2], &d);
                let r = x.index_select(&ids, 1).unwrap().to_f64_vec().unwrap();
                let want: Vec<f64> = (0..4)
                    .flat_map(|i| [5, 1].into_iter().map(move |j| (i * 6 + j) as f64))
                    .collect();
                assert_eq!(r, want, "{label} index_select dim1 {dt} ids {idt}");
                let g = t(&[0.0, 5.0, 2.0, 2.0, 1.0, 0.0, 4.0, 3.0], idt, &[4, 2], &d);
                let r = x.gather(&g, 1).unwrap().to_f64_vec().unwrap();
                let gi = [0, 5, 2, 2, 1, 0, 4, 3];
                let want: Vec<f64> = (0..8).map(|e| ((e / 2) * 6 + gi[e]) as f64).collect();
                assert_eq!(r, want, "{label} gather {dt} ids {idt}");
                let e = x
                    .embedding(&t(&[1.0, 2.0, 1.0, 0.0], idt, &[2, 2], &d))
                    .unwrap();
                assert_eq!(e.shape(), &[2, 2, 6]);
            }
        }
    }
}

#[test]
fn rope_both_layouts() {
    for (label, d) in common::devices() {
        for dt in FLOATS {
            let (b, h, s, hd) = (1usize, 2usize, 3usize, 8usize);
            let xv = rounded(&values(b * h * s * hd, 12, -1.0, 1.0), dt);
            let ang: Vec<f64> = (0..s * hd / 2).map(|i| (i as f64) * 0.37).collect();
            let cv = rounded(&ang.iter().map(|a| a.cos()).collect::<Vec<_>>(), dt);
            let sv = rounded(&ang.iter().map(|a| a.sin()).collect::<Vec<_>>(), dt);
            let x = t(&xv, dt, &[b, h, s, hd], &d);
            let (c, sn) = (t(&cv, dt, &[s, hd / 2], &d), t(&sv, dt, &[s, hd / 2], &d));
            for inter in [false, true] {
                let y = x.rope(&c, &sn, inter).unwrap().to_f64_vec().unwrap();
                let mut want = vec![0.0; xv.len()];
                let half = hd / 2;
                for row in 0..b * h * s {
                    let tpos = row % s;
                    for j in 0..half {
                        let (i0, i1) = if inter {
                            (2 * j, 2 * j + 1)
                        } else {
                            (j, j + half)
                        };
                        let (x0, x1) = (xv[row * hd + i0], xv[row * hd + i1]);
                        let (cc, ss) = (cv[tpos * half + j], sv[tpos * half + j]);
                        want[row * hd + i0] = x0 * cc - x1 * ss;
                        want[row * hd + i1] = x1 * cc + x0 * ss;
                    }
                }
                assert_close(
                    &format!("{label} rope interleaved={inter} {dt}"),
                    &y,
                    &rounded(&want, dt),
                    dt,
                    4.0,
                );
            }
        }
    }
}
