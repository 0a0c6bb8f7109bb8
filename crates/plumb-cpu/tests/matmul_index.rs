//! Matmul, quantized matmul, dequantize, index_select, gather, cat, rope and attention against
//! f64 references; capabilities and device facts.

mod common;
use common::*;
use plumb_core::{quant, DType, Error, OpFamily, Support, Tensor};

/// [batch, m, k] × [batch, k, n] in f64.
fn mm_ref(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(bi * m + i) * n + j] = (0..k)
                    .map(|p| a[(bi * m + i) * k + p] * b[(bi * k + p) * n + j])
                    .sum();
            }
        }
    }
    out
}

fn mm_tol(dt: DType, k: usize) -> f64 {
    // results are O(sqrt k); allow accumulation error plus one rounding of the output
    tol(dt) * (k as f64).sqrt().max(1.0) * 2.0
}

#[test]
fn matmul_shapes_and_views() {
    let d = dev();
    for dt in FLOATS {
        for &(batch, m, k, n) in &[
            (1, 1, 1, 1),
            (1, 7, 13, 5),
            (3, 17, 33, 9),
            (2, 70, 130, 66),
            (1, 1, 64, 300),
        ] {
            let a = round(dt, &vals(batch * m * k, 1, -1.0, 1.0));
            let b = round(dt, &vals(batch * k * n, 2, -1.0, 1.0));
            let want = mm_ref(&a, &b, batch, m, k, n);
            let ta = tensor(&a, dt, &[batch, m, k], &d);
            let tb = tensor(&b, dt, &[batch, k, n], &d);
            let what = format!("matmul_{dt} {batch}x{m}x{k}x{n}");
            assert_close(&what, &read(&ta.matmul(&tb).unwrap()), &want, mm_tol(dt, k));
            // b given as the transpose of a contiguous [batch, n, k]
            let bt: Vec<f64> = (0..batch)
                .flat_map(|bi| transpose(&b[bi * k * n..(bi + 1) * k * n], k, n))
                .collect();
            let tbt = tensor(&bt, dt, &[batch, n, k], &d).transpose(1, 2).unwrap();
            assert_close(
                &format!("{what} bᵀ"),
                &read(&ta.matmul(&tbt).unwrap()),
                &want,
                mm_tol(dt, k),
            );
            // a transposed too
            let at: Vec<f64> = (0..batch)
                .flat_map(|bi| transpose(&a[bi * m * k..(bi + 1) * m * k], m, k))
                .collect();
            let tat = tensor(&at, dt, &[batch, k, m], &d).transpose(1, 2).unwrap();
            assert_close(
                &format!("{what} aᵀ"),
                &read(&tat.matmul(&tbt).unwrap()),
                &want,
                mm_tol(dt, k),
            );
        }
        // narrowed rows of a larger matrix (offset + row stride)
        let big = round(dt, &vals(10 * 12, 8, -1.0, 1.0));
        let tbig = tensor(&big, dt, &[10, 12], &d);
        let sub = tbig.narrow(0, 2, 5).unwrap().narrow(1, 3, 7).unwrap(); // [5, 7]
        let subv: Vec<f64> = (2..7)
            .flat_map(|i| big[i * 12 + 3..i * 12 + 10].to_vec())
            .collect();
        let w = round(dt, &vals(7 * 4, 9, -1.0, 1.0));
        let tw = tensor(&w, dt, &[7, 4], &d);
        assert_close(
            "narrowed a",
            &read(&sub.matmul(&tw).unwrap()),
            &mm_ref(&subv, &w, 1, 5, 7, 4),
            mm_tol(dt, 7),
        );
        // k = 0 and m = 0
        let z = Tensor::zeros([3, 0], dt, &d)
            .unwrap()
            .matmul(&Tensor::zeros([0, 2], dt, &d).unwrap())
            .unwrap();
        assert_eq!(read(&z), vec![0.0; 6]);
        let e = Tensor::zeros([0, 4], dt, &d)
            .unwrap()
            .matmul(&Tensor::zeros([4, 2], dt, &d).unwrap())
            .unwrap();
        assert_eq!(e.shape(), &[0, 2]);
    }
}

#[test]
fn matmul_broadcast_batch() {
    let d = dev();
    for dt in FLOATS {
        // a [2, 3, 4, 5] × b [3, 5, 6]: b's batch dim broadcasts over a's leading 2
        let a = round(dt, &vals(120, 5, -1.0, 1.0));
        let b = round(dt, &vals(90, 6, -1.0, 1.0));
        let got = read(
            &tensor(&a, dt, &[2, 3, 4, 5], &d)
                .matmul(&tensor(&b, dt, &[3, 5, 6], &d))
                .unwrap(),
        );
        let bb: Vec<f64> = (0..6)
            .flat_map(|i| b[(i % 3) * 30..(i % 3 + 1) * 30].to_vec())
            .collect();
        assert_close(
            &format!("broadcast matmul {dt}"),
            &got,
            &mm_ref(&a, &bb, 6, 4, 5, 6),
            mm_tol(dt, 5),
        );
    }
    let d2 = dev();
    let i = Tensor::zeros([2, 2], DType::I32, &d2).unwrap();
    assert!(
        i.matmul(&i).is_err(),
        "integer matmul is refused with a reason"
    );
}

#[test]
fn qmatmul_and_dequantize() {
    let d = dev();
    for wdt in DType::QUANTIZED {
        let (n, k) = (37, 96);
        let w = vals(n * k, 31, -1.0, 1.0);
        let wbytes =
            quant::quantize(wdt, &w.iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap();
        let wq: Vec<f64> = quant::dequantize(wdt, &wbytes, n * k)
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let tw = Tensor::from_bytes(&wbytes, wdt, [n, k], &d).unwrap();
        for xdt in FLOATS {
            for rows in [1, 3, 20] {
                let x = round(xdt, &vals(rows * k, 32, -1.0, 1.0));
                let tx = tensor(&x, xdt, &[rows, k], &d);
                let got = read(&tx.qmatmul(&tw).unwrap());
                let want = mm_ref(&x, &transpose(&wq, n, k), 1, rows, k, n);
                // activations may be quantized to q8 blocks (scale amax/127, round to nearest):
                // |error| ≤ Σ_blocks Σ|w| · amax_block / 254, plus f32 / output rounding
                for r in 0..rows {
                    for j in 0..n {
                        let mut bound = 0.0;
                        for blk in 0..k / 32 {
                            let o = blk * 32;
                            let xs = &x[r * k + o..r * k + o + 32];
                            let amax = xs.iter().fold(0f64, |a, v| a.max(v.abs()));
                            let wsum: f64 =
                                wq[j * k + o..j * k + o + 32].iter().map(|v| v.abs()).sum();
                            bound += wsum * amax / 254.0;
                        }
                        let w = want[r * n + j];
                        let tl = bound * 1.01 + mm_tol(xdt, k) * w.abs().max(1.0);
                        let g = got[r * n + j];
                        assert!(
                            (g - w).abs() <= tl,
                            "qmatmul {wdt} x {xdt} rows {rows} [{r}, {j}]: got {g}, want {w}, bound {tl}"
                        );
                    }
                }
            }
        }
        // a non-finite activation row propagates (NaN stays NaN, as in an f32 matmul)
        let mut x = vals(2 * k, 33, -1.0, 1.0);
        x[5] = f64::NAN;
        let got = read(&tensor(&x, DType::F32, &[2, k], &d).qmatmul(&tw).unwrap());
        assert!(got[..n].iter().all(|v| v.is_nan()), "NaN row");
        assert!(got[n..].iter().all(|v| v.is_finite()), "finite row");
        for to in FLOATS {
            let got = read(&tw.dequantize(to).unwrap());
            assert_close(
                &format!("dequantize {wdt} -> {to}"),
                &got,
                &round(to, &wq),
                0.0,
            );
        }
        // a narrowed (row range) quantized weight
        let sub = tw.narrow(0, 5, 10).unwrap();
        let got = read(&sub.dequantize(DType::F32).unwrap());
        assert_close("narrowed q", &got, &wq[5 * k..15 * k], 0.0);
        // cat of quantized rows
        let c = Tensor::cat(&[&tw, &sub], 0).unwrap();
        let mut want = wq.clone();
        want.extend_from_slice(&wq[5 * k..15 * k]);
        assert_close("cat q", &read(&c), &want, 0.0);
    }
}

#[test]
fn index_select_gather_and_errors() {
    let d = dev();
    for dt in DType::PLAIN {
        let x = round(dt, &vals(24, 41, 0.0, 9.0));
        let t = tensor(&x, dt, &[4, 6], &d);
        for idt in [DType::I32, DType::I64, DType::U8] {
            let ids = tensor(&[3.0, 0.0, 3.0], idt, &[3], &d);
            let got = read(&t.index_select(&ids, 0).unwrap());
            let want: Vec<f64> = [3, 0, 3]
                .iter()
                .flat_map(|&r| x[r * 6..r * 6 + 6].to_vec())
                .collect();
            assert_eq!(got, want, "index_select_{dt} dim 0 ids {idt}");
            let got = read(&t.index_select(&ids, 1).unwrap());
            let want: Vec<f64> = (0..4)
                .flat_map(|r| [3, 0, 3].map(|c| x[r * 6 + c]))
                .collect();
            assert_eq!(got, want, "index_select_{dt} dim 1");
            // on a transposed table
            let got = read(&t.t().unwrap().index_select(&ids, 1).unwrap());
            let want: Vec<f64> = (0..6)
                .flat_map(|c| [3, 0, 3].map(|r| x[r * 6 + c]))
                .collect();
            assert_eq!(got, want, "index_select_{dt} transposed");
        }
        // gather along dim 1 with ids [4, 2]
        let gi = [5.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let ids = tensor(&gi, DType::I64, &[4, 2], &d);
        let got = read(&t.gather(&ids, 1).unwrap());
        let want: Vec<f64> = (0..8).map(|i| x[(i / 2) * 6 + gi[i] as usize]).collect();
        assert_eq!(got, want, "gather_{dt}");
        // cat along both dims, with a transposed part
        let y = tensor(&x[..12], dt, &[2, 6], &d);
        let got = read(&Tensor::cat(&[&t, &y], 0).unwrap());
        assert_eq!(got, [&x[..], &x[..12]].concat());
        let z = tensor(&x[..8], dt, &[2, 4], &d).t().unwrap(); // [4, 2]
        let got = read(&Tensor::cat(&[&t, &z], 1).unwrap());
        let zt = transpose(&x[..8], 2, 4);
        let want: Vec<f64> = (0..4)
            .flat_map(|r| [&x[r * 6..r * 6 + 6], &zt[r * 2..r * 2 + 2]].concat())
            .collect();
        assert_eq!(got, want, "cat_{dt} dim 1");
    }
    // out-of-range ids name the op, the id and the shape
    let t = Tensor::zeros([4, 6], DType::F32, &d).unwrap();
    for bad in [4.0, -1.0] {
        let ids = tensor(&[0.0, bad], DType::I64, &[2], &d);
        let e = t.index_select(&ids, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::OutOfRange {
                    op: "index_select",
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{}", bad as i64)) && msg.contains("[4, 6]"),
            "{msg}"
        );
    }
    let ids = tensor(&[6.0], DType::I32, &[1, 1], &d);
    let e = t.gather(&ids, 1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::OutOfRange {
                op: "gather",
                index: 6,
                ..
            }
        ),
        "{e}"
    );
    let emb = t
        .embedding(&tensor(&[1.0, 2.0, 3.0, 0.0], DType::I32, &[2, 2], &d))
        .unwrap();
    assert_eq!(emb.shape(), &[2, 2, 6]);
}

/// Selections of more than one team task's worth of values (16 Ki per task): rows picked along
/// dim 0 of a [300, 100] table, and along dim 1 of a [3, 300, 100] one, where a task's rows run
/// across the outer dim.
#[test]
fn index_select_split_into_tasks() {
    let d = dev();
    let x: Vec<f64> = (0..3 * 300 * 100).map(|i| (i % 1999) as f64).collect();
    let ids: Vec<f64> = (0..500).map(|i| ((i * 37 + 11) % 300) as f64).collect();
    let tid = tensor(&ids, DType::I32, &[500], &d);
    let t2 = tensor(&x[..300 * 100], DType::F32, &[300, 100], &d);
    let got = read(&t2.index_select(&tid, 0).unwrap());
    let want: Vec<f64> = ids
        .iter()
        .flat_map(|&r| x[r as usize * 100..][..100].to_vec())
        .collect();
    assert_eq!(got, want, "index_select dim 0 of [300, 100], 500 ids");
    let t3 = tensor(&x, DType::F32, &[3, 300, 100], &d);
    let got = read(&t3.index_select(&tid, 1).unwrap());
    let want: Vec<f64> = (0..3)
        .flat_map(|o| {
            ids.iter()
                .flat_map(move |&r| (0..100).map(move |c| (o * 300 + r as usize) * 100 + c))
        })
        .map(|i| x[i])
        .collect();
    assert_eq!(got, want, "index_select dim 1 of [3, 300, 100], 500 ids");
}

#[test]
fn rope_both_layouts() {
    let d = dev();
    for dt in FLOATS {
        let (b, h, s, hd) = (2, 3, 5, 8);
        let x = round(dt, &vals(b * h * s * hd, 51, -2.0, 2.0));
        let ang: Vec<f64> = (0..s * hd / 2).map(|i| (i as f64) * 0.37).collect();
        let (c, sn): (Vec<f64>, Vec<f64>) = (
            round(dt, &ang.iter().map(|a| a.cos()).collect::<Vec<_>>()),
            round(dt, &ang.iter().map(|a| a.sin()).collect::<Vec<_>>()),
        );
        let tx = tensor(&x, dt, &[b, h, s, hd], &d);
        let tc = tensor(&c, dt, &[s, hd / 2], &d);
        let ts = tensor(&sn, dt, &[s, hd / 2], &d);
        for inter in [false, true] {
            let got = read(&tx.rope(&tc, &ts, inter).unwrap());
            let mut want = x.clone();
            for row in 0..b * h * s {
                let t = row % s;
                for i in 0..hd / 2 {
                    let (p, q) = if inter {
                        (2 * i, 2 * i + 1)
                    } else {
                        (i, i + hd / 2)
                    };
                    let (xa, xb) = (x[row * hd + p], x[row * hd + q]);
                    let (cc, ss) = (c[t * hd / 2 + i], sn[t * hd / 2 + i]);
                    want[row * hd + p] = xa * cc - xb * ss;
                    want[row * hd + q] = xb * cc + xa * ss;
                }
            }
            assert_close(
                &format!("rope_{dt} interleaved={inter}"),
                &got,
                &want,
                tol(dt) * 2.0,
            );
        }
    }
}

#[test]
fn attention_causal_matches_reference() {
    let d = dev();
    let (b, h, s, dh) = (1, 2, 4, 8);
    let q = vals(b * h * s * dh, 61, -1.0, 1.0);
    let k = vals(b * h * s * dh, 62, -1.0, 1.0);
    let v = vals(b * h * s * dh, 63, -1.0, 1.0);
    let t = |x: &[f64]| tensor(x, DType::F64, &[b, h, s, dh], &d);
    let got = read(&Tensor::attention(&t(&q), &t(&k), &t(&v), None, true, None).unwrap());
    let scale = 1.0 / (dh as f64).sqrt();
    let mut want = vec![0.0; q.len()];
    for hh in 0..h {
        for i in 0..s {
            let base = hh * s * dh;
            let sc: Vec<f64> = (0..=i)
                .map(|j| {
                    (0..dh)
                        .map(|p| q[base + i * dh + p] * k[base + j * dh + p])
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = sc.iter().map(|x| (x - m).exp()).sum();
            for p in 0..dh {
                want[base + i * dh + p] = (0..=i)
                    .map(|j| (sc[j] - m).exp() / z * v[base + j * dh + p])
                    .sum();
            }
        }
    }
    assert_close("attention f64", &got, &want, 1e-12);
}

#[test]
fn capabilities_and_info() {
    let d = dev();
    let info = d.info();
    assert_eq!(info.id, "cpu");
    assert_eq!(info.api, "native");
    assert!(info.driver.starts_with("plumb-cpu "));
    assert!(
        info.features.iter().any(|f| f == "threads=2"),
        "{:?}",
        info.features
    );
    for f in OpFamily::ALL {
        for dt in DType::ALL {
            let s = d.supports(f, dt);
            let runnable = s.is_runnable();
            let expect = match f {
                OpFamily::QMatmul => dt.is_quantized(),
                OpFamily::Copy => true,
                OpFamily::Elementwise | OpFamily::Index | OpFamily::Cast => !dt.is_quantized(),
                OpFamily::Reduce => !dt.is_quantized() && dt != DType::Bool,
                _ => dt.is_float(),
            };
            assert_eq!(runnable, expect, "{f} {dt}: {s}");
            if let Support::Unsupported { reason } = s {
                assert!(!reason.is_empty());
            }
        }
    }
    let lim = &d.capabilities().limits;
    assert!(lim.max_buffer_bytes > 0);
}

#[test]
fn simd_q8_block_dots_match_the_portable_integer_dots() {
    use plumb_cpu::kernels::{qdot, simd};
    if simd::level() == simd::Level::Baseline {
        eprintln!("skipped: this CPU has no AVX2, so only the portable path exists");
        return;
    }
    let k = 256;
    let x: Vec<f32> = vals(k, 91, -3.0, 3.0)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let xq = qdot::quantize_q8(&x);
    for dt in DType::QUANTIZED {
        let w: Vec<f32> = vals(k, 92, -2.0, 2.0)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let wb = quant::quantize(dt, &w).unwrap();
        let fast = qdot::dot_row_q8(dt, &wb, &xq) as f64;
        let slow = qdot::dot_row_q8_portable(dt, &wb, &xq) as f64;
        assert!(
            (fast - slow).abs() <= 1e-5 * slow.abs().max(1.0),
            "{dt}: simd {fast} vs portable {slow}"
        );
    }
}

/// The `vdpbf16ps` kernel on every layout it reads differently: `a` in place (row-major, even
/// k) or packed (odd k, transposed), `b` row-major, transposed (a linear layer's weight) or
/// broadcast over the batch, tiles of fewer rows than the kernel's, and the fused bias,
/// activation and residual. The output is f32 here, so the sums are checked before rounding.
#[test]
fn bf16_dot_product_kernel_matches_reference() {
    use plumb_cpu::kernels::{matmul::dims, matmul_bf16, matmul_widen::Epilogue};
    if !matmul_bf16::available() {
        eprintln!("skipped: this CPU has no AVX512-BF16 (or AVX-512 is turned off)");
        return;
    }
    let d = dev();
    let mut cases = 0;
    for &(batch, m, k, n) in &[
        (1, 9, 17, 70),
        (2, 16, 64, 32),
        (1, 13, 48, 130),
        (3, 1, 8, 5),
    ] {
        let a = round(DType::BF16, &vals(batch * m * k, 3, -1.0, 1.0));
        let b = round(DType::BF16, &vals(batch * k * n, 4, -1.0, 1.0));
        let want = mm_ref(&a, &b, batch, m, k, n);
        let per = |v: &[f64], r: usize, c: usize| -> Vec<f64> {
            v.chunks(r * c).flat_map(|x| transpose(x, r, c)).collect()
        };
        let a_rows = tensor(&a, DType::BF16, &[batch, m, k], &d);
        let a_cols = tensor(&per(&a, m, k), DType::BF16, &[batch, k, m], &d)
            .transpose(1, 2)
            .unwrap();
        let b_rows = tensor(&b, DType::BF16, &[batch, k, n], &d);
        let b_cols = tensor(&per(&b, k, n), DType::BF16, &[batch, n, k], &d)
            .transpose(1, 2)
            .unwrap();
        for (ta, tb, what) in [
            (&a_rows, &b_rows, "a rows, b rows"),
            (&a_rows, &b_cols, "a rows, b transposed"),
            (&a_cols, &b_rows, "a transposed, b rows"),
            (&a_cols, &b_cols, "a transposed, b transposed"),
        ] {
            let got = matmul_bf16::matmul::<f32>(
                &ta.view(),
                &tb.view(),
                dims(&ta.view(), &tb.view()),
                Epilogue::NONE,
                None,
            )
            .unwrap()
            .expect("the kernel is available");
            let got: Vec<f64> = got.into_iter().map(f64::from).collect();
            assert_close(
                &format!("vdpbf16ps {batch}x{m}x{k}x{n}, {what}"),
                &got,
                &want,
                1e-5 * (k as f64).sqrt(),
            );
            cases += 1;
        }
        // one weight broadcast over the batch, with a bias, relu and a residual
        let w = &b[..k * n];
        let tw = tensor(w, DType::BF16, &[k, n], &d)
            .broadcast_as([batch, k, n])
            .unwrap();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 1.0).collect();
        let res: Vec<f32> = (0..batch * m * n).map(|i| (i % 7) as f32 * 0.5).collect();
        let relu = |row: &mut [f32]| row.iter_mut().for_each(|v| *v = v.max(0.0));
        let epi = Epilogue {
            bias: Some(&bias[..]),
            act: Some(&relu),
            res: Some(&res[..]),
        };
        let got = matmul_bf16::matmul::<f32>(
            &a_rows.view(),
            &tw.view(),
            dims(&a_rows.view(), &tw.view()),
            epi,
            None,
        )
        .unwrap()
        .expect("the kernel is available");
        let wide: Vec<f64> = (0..batch).flat_map(|_| w.iter().copied()).collect();
        let want: Vec<f64> = mm_ref(&a, &wide, batch, m, k, n)
            .iter()
            .enumerate()
            .map(|(i, v)| (v + bias[i % n] as f64).max(0.0) + res[i] as f64)
            .collect();
        let got: Vec<f64> = got.into_iter().map(f64::from).collect();
        assert_close(
            &format!("vdpbf16ps {batch}x{m}x{k}x{n}, broadcast weight + bias, relu, residual"),
            &got,
            &want,
            1e-5 * (k as f64).sqrt(),
        );
        cases += 1;
    }
    assert_eq!(cases, 20);
}

/// A bf16 weight [n, k] as the loaders keep it is packed for the `vdpbf16ps` kernel exactly where
/// that kernel is selected, and every product with it, one row included, then reads the panels:
/// the same values as the f64 product, and the read-back is the weight.
#[test]
fn bf16_weights_are_packed_where_the_dot_product_kernel_is_selected() {
    use plumb_cpu::kernels::matmul_bf16;
    use plumb_cpu::storage::CpuStorage;
    let d = dev();
    let (k, n) = (96, 128);
    let wt = round(DType::BF16, &vals(k * n, 5, -1.0, 1.0)); // [k, n]
    let w = tensor(&wt, DType::BF16, &[k, n], &d)
        .t()
        .unwrap()
        .packed_for_matmul()
        .unwrap();
    let packed = w
        .storage()
        .as_any()
        .downcast_ref::<CpuStorage>()
        .and_then(|s| s.packed_bf16())
        .is_some();
    assert_eq!(
        packed,
        matmul_bf16::selected(),
        "packed for vdpbf16ps: {packed}, kernel selected: {}",
        matmul_bf16::selected()
    );
    if !packed {
        eprintln!("skipped the packed products: the vdpbf16ps kernel is not selected here");
    }
    for m in [1, 3, 40] {
        let x = round(DType::BF16, &vals(m * k, 6, -1.0, 1.0));
        let got = read(
            &tensor(&x, DType::BF16, &[m, k], &d)
                .matmul(&w.t().unwrap())
                .unwrap(),
        );
        let want = mm_ref(&x, &wt, 1, m, k, n);
        assert_close(
            &format!("[{m},{k}]·packed [{n},{k}]ᵀ"),
            &got,
            &want,
            mm_tol(DType::BF16, k),
        );
    }
    assert_eq!(
        read(&w),
        transpose(&wt, k, n),
        "read-back of the packed weight"
    );
    // an empty depth: the sums are zero (and an empty weight is not packed)
    let x = tensor(&[], DType::BF16, &[40, 0], &d);
    let e = tensor(&[], DType::BF16, &[0, n], &d);
    assert_eq!(
        read(&x.matmul(&e).unwrap()),
        vec![0.0; 40 * n],
        "[40,0]·[0,{n}]"
    );
    let e = e.t().unwrap().packed_for_matmul().unwrap();
    assert_eq!(
        read(&x.matmul(&e.t().unwrap()).unwrap()),
        vec![0.0; 40 * n],
        "[40,0]·[{n},0]ᵀ after packed_for_matmul"
    );
}

/// An f32 weight [n, k] as the loaders keep it is packed as `matmul_rows`' strips exactly where
/// that kernel takes them (AVX-512), and every product with it then reads the strips: one row,
/// a few, more than one group of rows, batch dims folded, a transposed `x`, the fused bias with
/// relu and the residual; the read-back is the weight.
#[test]
fn f32_weights_are_packed_as_strips_where_the_rows_kernel_runs() {
    use plumb_cpu::kernels::{matmul_f32_avx2, matmul_rows};
    let expected = matmul_rows::packs_strips() && !matmul_f32_avx2::packs_weights();
    products_with_strips(DType::F32, expected);
}

/// An f16 weight is packed as the same strips wherever the kernel runs (it widens them chunk by
/// chunk), and the same products read them.
#[test]
fn f16_weights_are_packed_as_strips_where_the_rows_kernel_runs() {
    products_with_strips(DType::F16, plumb_cpu::kernels::matmul_rows::packs_strips());
}

/// The body of the two tests above: `dt`'s weight is packed as strips exactly when `expected`,
/// and the products match the f64 product either way.
fn products_with_strips(dt: DType, expected: bool) {
    use plumb_core::UnaryOp;
    use plumb_cpu::storage::CpuStorage;
    let d = dev();
    let (k, n) = (96, 128);
    let wt = round(dt, &vals(k * n, 7, -1.0, 1.0)); // [k, n]
    let w = tensor(&wt, dt, &[k, n], &d)
        .t()
        .unwrap()
        .packed_for_matmul()
        .unwrap();
    let strips = w
        .storage()
        .as_any()
        .downcast_ref::<CpuStorage>()
        .is_some_and(|s| s.packed_strips().is_some() || s.packed_strips_f16().is_some());
    assert_eq!(
        strips, expected,
        "{dt} packed as strips: {strips}, expected {expected}"
    );
    if !strips {
        eprintln!("skipped the {dt} strips: this CPU packs {dt} weights otherwise or not at all");
    }
    let bias = round(dt, &vals(n, 8, -1.0, 1.0));
    let tb = tensor(&bias, dt, &[n], &d);
    let tol = mm_tol(dt, k);
    for m in [1, 40, 200] {
        let x = round(dt, &vals(m * k, 9, -1.0, 1.0));
        let want = mm_ref(&x, &wt, 1, m, k, n);
        let tx = tensor(&x, dt, &[m, k], &d);
        let got = read(&tx.matmul(&w.t().unwrap()).unwrap());
        assert_close(&format!("{dt} [{m},{k}]·strips"), &got, &want, tol);
        // the same rows as a transposed view
        let txt = tensor(&transpose(&x, m, k), dt, &[k, m], &d).t().unwrap();
        let got = read(&txt.matmul(&w.t().unwrap()).unwrap());
        assert_close(&format!("{dt} [{k},{m}]ᵀ·strips"), &got, &want, tol);
        // bias + relu, then bias + a residual
        let got = read(&tx.linear_act(&w, Some(&tb), UnaryOp::Relu).unwrap());
        let relu: Vec<f64> = (0..m * n)
            .map(|i| (want[i] + bias[i % n]).max(0.0))
            .collect();
        assert_close(&format!("{dt} [{m},{k}] linear relu"), &got, &relu, tol);
        let res = round(dt, &vals(m * n, 10, -1.0, 1.0));
        let tr = tensor(&res, dt, &[m, n], &d);
        let got = read(&tx.linear_add(&w, Some(&tb), &tr).unwrap());
        let added: Vec<f64> = (0..m * n).map(|i| want[i] + bias[i % n] + res[i]).collect();
        assert_close(
            &format!("{dt} [{m},{k}] linear + residual"),
            &got,
            &added,
            tol,
        );
    }
    // batch dims folded into rows
    let x = round(dt, &vals(2 * 100 * k, 11, -1.0, 1.0));
    let got = read(
        &tensor(&x, dt, &[2, 100, k], &d)
            .matmul(&w.t().unwrap())
            .unwrap(),
    );
    let want = mm_ref(&x, &wt, 1, 200, k, n);
    assert_close(&format!("{dt} [2,100,96]·strips"), &got, &want, tol);
    assert_eq!(
        read(&w),
        transpose(&wt, k, n),
        "{dt} read-back of the strips"
    );
}

#[test]
fn matmul_with_stride_zero_rows_and_columns() {
    let d = dev();
    for dt in FLOATS {
        let (m, k, n) = (5, 19, 7);
        let row = round(dt, &vals(k, 71, -1.0, 1.0));
        let col = round(dt, &vals(k, 72, -1.0, 1.0));
        // a: one row broadcast over m rows; b: one column broadcast over n columns
        let ta = tensor(&row, dt, &[1, k], &d).broadcast_as([m, k]).unwrap();
        let tb = tensor(&col, dt, &[k, 1], &d).broadcast_as([k, n]).unwrap();
        let dot: f64 = row.iter().zip(&col).map(|(a, b)| a * b).sum();
        let got = read(&ta.matmul(&tb).unwrap());
        assert_close(
            &format!("broadcast operands {dt}"),
            &got,
            &vec![dot; m * n],
            mm_tol(dt, k),
        );
    }
}
