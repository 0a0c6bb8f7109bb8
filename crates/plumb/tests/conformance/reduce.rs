//! Reductions over each dim, softmax and log-softmax, layer norm and RMS norm.

use crate::elementwise::per_dtype;
use crate::harness::{cmp, cmp_shape, rand, strides, tensor, Suite};
use plumb::{DType, OpFamily, ReduceOp};

/// Reduce `x` of `shape` over `dim` with `f` applied to each fibre (row-major output).
fn reduce_ref(x: &[f64], shape: &[usize], dim: usize, f: &dyn Fn(&[f64]) -> f64) -> Vec<f64> {
    let st = strides(shape);
    let mut out_shape = shape.to_vec();
    out_shape[dim] = 1;
    let n: usize = out_shape.iter().product();
    let ost = strides(&out_shape);
    (0..n)
        .map(|o| {
            let mut base = 0;
            let mut rem = o;
            for d in 0..shape.len() {
                let i = rem / ost[d];
                rem %= ost[d];
                base += i * st[d];
            }
            let fibre: Vec<f64> = (0..shape[dim]).map(|j| x[base + j * st[dim]]).collect();
            f(&fibre)
        })
        .collect()
}

fn reduce_fn(op: ReduceOp) -> fn(&[f64]) -> f64 {
    match op {
        ReduceOp::Sum => |v| v.iter().sum(),
        ReduceOp::Mean => |v| v.iter().sum::<f64>() / v.len() as f64,
        ReduceOp::Max => |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ReduceOp::Min => |v| v.iter().copied().fold(f64::INFINITY, f64::min),
        ReduceOp::ArgMax => |v| {
            let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            v.iter().position(|&x| x == m).unwrap_or(0) as f64
        },
    }
}

fn reductions(s: &mut Suite, dt: DType) {
    for op in ReduceOp::ALL {
        if op == ReduceOp::Mean && !dt.is_float() {
            continue; // mean is float-only in the API
        }
        s.case(op.name(), OpFamily::Reduce, dt, |dev| {
            let shape = [3, 4, 5];
            let (lo, hi) = if dt.is_float() {
                (-4.0, 4.0)
            } else {
                (-500.0, 500.0)
            };
            let x = rand(60, lo, hi, dt, 41 + op as u64);
            let t = tensor(dev, dt, &shape, &x)?;
            let mut out = Vec::new();
            for dim in 0..3 {
                let exp = reduce_ref(&x, &shape, dim, &reduce_fn(op));
                let mut keep = shape.to_vec();
                keep[dim] = 1;
                let mut squeezed = shape.to_vec();
                squeezed.remove(dim);
                let r = t.reduce(op, dim as isize, true)?;
                out.push(cmp_shape(
                    &format!("dim {dim} keepdim"),
                    &r,
                    &keep,
                    exp.clone(),
                    2.0,
                )?);
                let r = t.reduce(op, dim as isize - 3, false)?;
                out.push(cmp_shape(
                    &format!("dim {} squeezed", dim as isize - 3),
                    &r,
                    &squeezed,
                    exp,
                    2.0,
                )?);
            }
            // a non-contiguous input: reduce the last dim of a transposed view
            let tt = t.transpose(0, 2)?; // [5, 4, 3]
            let xt: Vec<f64> = (0..60)
                .map(|i| {
                    let (a, b, c) = (i / 12, (i / 3) % 4, i % 3);
                    x[c * 20 + b * 5 + a]
                })
                .collect();
            let exp = reduce_ref(&xt, &[5, 4, 3], 2, &reduce_fn(op));
            out.push(cmp(
                "transposed view, last dim",
                &tt.reduce(op, -1, false)?,
                exp,
                2.0,
            )?);
            Ok(out)
        });
    }
}

fn softmax_rows(x: &[f64], c: usize, log: bool) -> Vec<f64> {
    x.chunks(c)
        .flat_map(|row| {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
            row.iter()
                .map(move |v| {
                    if log {
                        v - m - z.ln()
                    } else {
                        (v - m).exp() / z
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn softmax(s: &mut Suite, dt: DType) {
    for log in [false, true] {
        let op = if log { "log_softmax" } else { "softmax" };
        s.case(op, OpFamily::Softmax, dt, |dev| {
            let (r, c) = (6, 33);
            let x = rand(r * c, -5.0, 5.0, dt, 51);
            let t = tensor(dev, dt, &[r, c], &x)?;
            let run =
                |t: &plumb::Tensor, d: isize| if log { t.log_softmax(d) } else { t.softmax(d) };
            let mut out = vec![cmp(
                "last dim",
                &run(&t, -1)?,
                softmax_rows(&x, c, log),
                2.0,
            )?];
            // over dim 0: the reference works on the transpose
            let xt = crate::harness::transpose(&x, r, c);
            let e0 = crate::harness::transpose(&softmax_rows(&xt, r, log), c, r);
            out.push(cmp("dim 0", &run(&t, 0)?, e0, 2.0)?);
            // large values: stable softmax must not overflow (1000 is representable in every float)
            let big: Vec<f64> = x
                .iter()
                .map(|v| crate::harness::round(dt, v + 1000.0))
                .collect();
            let tb = tensor(dev, dt, &[r, c], &big)?;
            out.push(cmp(
                "values near 1000",
                &run(&tb, -1)?,
                softmax_rows(&big, c, log),
                2.0,
            )?);
            Ok(out)
        });
    }
}

fn norms(s: &mut Suite, dt: DType) {
    s.case("layer_norm", OpFamily::Norm, dt, |dev| {
        let (r, c) = (5, 24);
        let x = rand(r * c, -3.0, 3.0, dt, 61);
        let w = rand(c, 0.5, 1.5, dt, 62);
        let b = rand(c, -0.5, 0.5, dt, 63);
        let eps = 1e-5;
        let (t, tw, tb) = (
            tensor(dev, dt, &[r, c], &x)?,
            tensor(dev, dt, &[c], &w)?,
            tensor(dev, dt, &[c], &b)?,
        );
        let mut plain = Vec::new();
        let mut affine = Vec::new();
        for row in x.chunks(c) {
            let mean = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / c as f64;
            for j in 0..c {
                let n = (row[j] - mean) / (var + eps).sqrt();
                plain.push(n);
                affine.push(n * w[j] + b[j]);
            }
        }
        Ok(vec![
            cmp("no weight", &t.layer_norm(None, None, eps)?, plain, 2.0)?,
            cmp(
                "weight and bias",
                &t.layer_norm(Some(&tw), Some(&tb), eps)?,
                affine,
                2.0,
            )?,
        ])
    });
    s.case("rms_norm", OpFamily::Norm, dt, |dev| {
        let (r, c) = (5, 24);
        let x = rand(r * c, -3.0, 3.0, dt, 64);
        let w = rand(c, 0.5, 1.5, dt, 65);
        let eps = 1e-6;
        let (t, tw) = (tensor(dev, dt, &[r, c], &x)?, tensor(dev, dt, &[c], &w)?);
        let mut plain = Vec::new();
        let mut weighted = Vec::new();
        for row in x.chunks(c) {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / c as f64;
            for j in 0..c {
                let n = row[j] / (ms + eps).sqrt();
                plain.push(n);
                weighted.push(n * w[j]);
            }
        }
        // a non-contiguous input: narrow off the first column of a wider tensor
        let wide: Vec<f64> = x
            .chunks(c)
            .flat_map(|row| {
                let mut v = vec![7.0];
                v.extend_from_slice(row);
                v
            })
            .collect();
        let tn = tensor(dev, dt, &[r, c + 1], &wide)?.narrow(1, 1, c)?;
        Ok(vec![
            cmp("no weight", &t.rms_norm(None, eps)?, plain, 2.0)?,
            cmp(
                "weight",
                &t.rms_norm(Some(&tw), eps)?,
                weighted.clone(),
                2.0,
            )?,
            cmp(
                "narrowed view",
                &tn.rms_norm(Some(&tw), eps)?,
                weighted,
                2.0,
            )?,
        ])
    });
}

per_dtype!(reductions: reduce_f32 = DType::F32, reduce_f16 = DType::F16, reduce_bf16 = DType::BF16,
    reduce_f64 = DType::F64, reduce_i32 = DType::I32, reduce_i64 = DType::I64);
per_dtype!(softmax: softmax_f32 = DType::F32, softmax_f16 = DType::F16,
    softmax_bf16 = DType::BF16, softmax_f64 = DType::F64);
per_dtype!(norms: norm_f32 = DType::F32, norm_f16 = DType::F16, norm_bf16 = DType::BF16,
    norm_f64 = DType::F64);
