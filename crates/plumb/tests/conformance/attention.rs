//! Scaled-dot-product attention: causal and masked, grouped-query heads, strided queries, few
//! and many query rows; and f32 queries over keys and values kept in f16 or bf16 (a narrow KV
//! cache).

use crate::elementwise::per_dtype;
use crate::harness::{cmp_shape, rand, tensor, Suite};
use plumb::{DType, OpFamily, Tensor};

/// f64 attention reference: `qv(head, row, x)` reads the queries; k/v are [hkv, t, d]; `mask`
/// is an additive per-key mask.
#[allow(clippy::too_many_arguments)]
fn attention_ref(
    qv: &dyn Fn(usize, usize, usize) -> f64,
    k: &[f64],
    v: &[f64],
    (h, hkv, sq, t, d): (usize, usize, usize, usize, usize),
    causal: bool,
    mask: &[f64],
) -> Vec<f64> {
    let scale = 1.0 / (d as f64).sqrt();
    let mut exp = Vec::new();
    for hi in 0..h {
        let g = hi / (h / hkv);
        for i in 0..sq {
            let visible = if causal { i + (t - sq) + 1 } else { t };
            let scores: Vec<f64> = (0..visible)
                .map(|j| {
                    (0..d)
                        .map(|x| qv(hi, i, x) * k[(g * t + j) * d + x])
                        .sum::<f64>()
                        * scale
                        + mask[j]
                })
                .collect();
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
            for x in 0..d {
                exp.push(
                    (0..visible)
                        .map(|j| (scores[j] - m).exp() / z * v[(g * t + j) * d + x])
                        .sum(),
                );
            }
        }
    }
    exp
}

/// Causal attention with 4 query heads over 2 kv heads, 3 new queries after 2 cached keys; then
/// 12 queries read through a transposed view with key 4 masked out; then 70 queries after 5
/// cached keys, strided, with key 2 masked out; then 2 queries of 80 dims after 38 keys.
fn attention(s: &mut Suite, dt: DType) {
    s.case("attention", OpFamily::Matmul, dt, |dev| {
        let (h, hkv, sq, t, d) = (4, 2, 3, 5, 8);
        let q = rand(h * sq * d, -1.0, 1.0, dt, 101);
        let k = rand(hkv * t * d, -1.0, 1.0, dt, 102);
        let v = rand(hkv * t * d, -1.0, 1.0, dt, 103);
        let (tq, tk, tv) = (
            tensor(dev, dt, &[1, h, sq, d], &q)?,
            tensor(dev, dt, &[1, hkv, t, d], &k)?,
            tensor(dev, dt, &[1, hkv, t, d], &v)?,
        );
        let mut out = Vec::new();
        let qv = |hi: usize, i: usize, x: usize| q[(hi * sq + i) * d + x];
        for causal in [true, false] {
            let exp = attention_ref(&qv, &k, &v, (h, hkv, sq, t, d), causal, &[0.0; 5]);
            let y = Tensor::attention(&tq, &tk, &tv, None, causal, None)?;
            let what = if causal {
                "causal, GQA 4/2"
            } else {
                "full, GQA 4/2"
            };
            out.push(cmp_shape(what, &y, &[1, h, sq, d], exp, 4.0)?);
        }
        // q stored [1, sq2, h, d] and viewed as [1, h, sq2, d]; key 4 masked out (12 rows: the
        // CPU's fused path, which takes up to 16)
        let sq2 = 12;
        let q2 = rand(sq2 * h * d, -1.0, 1.0, dt, 104);
        let k2 = rand(hkv * sq2 * d, -1.0, 1.0, dt, 105);
        let v2 = rand(hkv * sq2 * d, -1.0, 1.0, dt, 106);
        let tq2 = tensor(dev, dt, &[1, sq2, h, d], &q2)?.transpose(1, 2)?;
        let tk2 = tensor(dev, dt, &[1, hkv, sq2, d], &k2)?;
        let tv2 = tensor(dev, dt, &[1, hkv, sq2, d], &v2)?;
        let mut mask = vec![0.0; sq2];
        mask[4] = f64::NEG_INFINITY;
        let tmask = tensor(dev, dt, &[1, 1, 1, sq2], &mask)?;
        let qv2 = |hi: usize, i: usize, x: usize| q2[(i * h + hi) * d + x];
        let shape = (h, hkv, sq2, sq2, d);
        for causal in [true, false] {
            let exp = attention_ref(&qv2, &k2, &v2, shape, causal, &mask);
            let y = Tensor::attention(&tq2, &tk2, &tv2, Some(&tmask), causal, None)?;
            let what = if causal {
                "masked causal, strided q"
            } else {
                "masked, strided q"
            };
            out.push(cmp_shape(what, &y, &[1, h, sq2, d], exp, 4.0)?);
        }
        // 70 queries after 5 cached keys (the CPU's f32 path for many rows: blocks of 64
        // rows, the causal block stopping at its last visible key), q strided, key 2 masked
        let (sq3, t3) = (70, 75);
        let q3 = rand(sq3 * h * d, -1.0, 1.0, dt, 107);
        let k3 = rand(hkv * t3 * d, -1.0, 1.0, dt, 108);
        let v3 = rand(hkv * t3 * d, -1.0, 1.0, dt, 109);
        let tq3 = tensor(dev, dt, &[1, sq3, h, d], &q3)?.transpose(1, 2)?;
        let tk3 = tensor(dev, dt, &[1, hkv, t3, d], &k3)?;
        let tv3 = tensor(dev, dt, &[1, hkv, t3, d], &v3)?;
        let mut mask3 = vec![0.0; t3];
        mask3[2] = f64::NEG_INFINITY;
        let tmask3 = tensor(dev, dt, &[1, 1, 1, t3], &mask3)?;
        let qv3 = |hi: usize, i: usize, x: usize| q3[(i * h + hi) * d + x];
        for causal in [true, false] {
            let exp = attention_ref(&qv3, &k3, &v3, (h, hkv, sq3, t3, d), causal, &mask3);
            let y = Tensor::attention(&tq3, &tk3, &tv3, Some(&tmask3), causal, None)?;
            let what = if causal {
                "70 rows after 5 keys, masked causal, GQA 4/2"
            } else {
                "70 rows, 75 keys, masked, GQA 4/2"
            };
            out.push(cmp_shape(what, &y, &[1, h, sq3, d], exp, 4.0)?);
        }
        // decoding with heads of 80 dims: 2 new queries after 38 cached keys (the CPU's loop
        // for few rows sums the values 64 columns at a time, then the last 16)
        let (sq4, t4, d4) = (2, 40, 80);
        let q4 = rand(h * sq4 * d4, -1.0, 1.0, dt, 110);
        let k4 = rand(hkv * t4 * d4, -1.0, 1.0, dt, 111);
        let v4 = rand(hkv * t4 * d4, -1.0, 1.0, dt, 112);
        let (tq4, tk4, tv4) = (
            tensor(dev, dt, &[1, h, sq4, d4], &q4)?,
            tensor(dev, dt, &[1, hkv, t4, d4], &k4)?,
            tensor(dev, dt, &[1, hkv, t4, d4], &v4)?,
        );
        let qv4 = |hi: usize, i: usize, x: usize| q4[(hi * sq4 + i) * d4 + x];
        let mut mask4 = vec![0.0; t4];
        mask4[3] = f64::NEG_INFINITY;
        let tmask4 = tensor(dev, dt, &[1, 1, 1, t4], &mask4)?;
        for (causal, mask) in [(true, None), (false, Some(&tmask4))] {
            let m = if mask.is_some() {
                &mask4[..]
            } else {
                &[0.0; 40]
            };
            let exp = attention_ref(&qv4, &k4, &v4, (h, hkv, sq4, t4, d4), causal, m);
            let y = Tensor::attention(&tq4, &tk4, &tv4, mask, causal, None)?;
            let what = if causal {
                "2 rows after 38 keys, 80 dims, causal, GQA 4/2"
            } else {
                "2 rows, 40 keys, 80 dims, key 3 masked, GQA 4/2"
            };
            out.push(cmp_shape(what, &y, &[1, h, sq4, d4], exp, 4.0)?);
        }
        // decoding over a long cache (the CPU splits its keys into chunks across threads): 3
        // rows after 597 keys of 64 dims, causal, key 300 masked
        let (sq5, t5, d5) = (3, 600, 64);
        let q5 = rand(h * sq5 * d5, -1.0, 1.0, dt, 113);
        // the first 100 keys of each head 4× longer: one chunk's maximum far above the others'
        let k5: Vec<f64> = rand(hkv * t5 * d5, -1.0, 1.0, dt, 114)
            .iter()
            .enumerate()
            .map(|(i, &x)| if i / d5 % t5 < 100 { 4.0 * x } else { x })
            .collect();
        let v5 = rand(hkv * t5 * d5, -1.0, 1.0, dt, 115);
        let (tq5, tk5, tv5) = (
            tensor(dev, dt, &[1, h, sq5, d5], &q5)?,
            tensor(dev, dt, &[1, hkv, t5, d5], &k5)?,
            tensor(dev, dt, &[1, hkv, t5, d5], &v5)?,
        );
        let qv5 = |hi: usize, i: usize, x: usize| q5[(hi * sq5 + i) * d5 + x];
        let mut mask5 = vec![0.0; t5];
        mask5[300] = f64::NEG_INFINITY;
        let tmask5 = tensor(dev, dt, &[1, 1, 1, t5], &mask5)?;
        let exp = attention_ref(&qv5, &k5, &v5, (h, hkv, sq5, t5, d5), true, &mask5);
        let y = Tensor::attention(&tq5, &tk5, &tv5, Some(&tmask5), true, None)?;
        let what = "3 rows after 597 keys, 64 dims, causal, key 300 masked, GQA 4/2";
        out.push(cmp_shape(what, &y, &[1, h, sq5, d5], exp, 4.0)?);
        // the same with a NaN in key 450 of kv head 1 (its query heads 2 and 3 are NaN, the
        // others as before), and with every key masked out (all NaN, as softmax gives)
        let mut k6 = k5.clone();
        k6[(t5 + 450) * d5 + 7] = f64::NAN;
        let tk6 = tensor(dev, dt, &[1, hkv, t5, d5], &k6)?;
        let mut exp = attention_ref(&qv5, &k5, &v5, (h, hkv, sq5, t5, d5), true, &mask5);
        exp[2 * sq5 * d5..].fill(f64::NAN);
        let y = Tensor::attention(&tq5, &tk6, &tv5, Some(&tmask5), true, None)?;
        let what = "3 rows after 597 keys, a NaN in kv head 1's key 450";
        out.push(cmp_shape(what, &y, &[1, h, sq5, d5], exp, 4.0)?);
        let none = tensor(dev, dt, &[1, 1, 1, t5], &vec![f64::NEG_INFINITY; t5])?;
        let y = Tensor::attention(&tq5, &tk5, &tv5, Some(&none), false, None)?;
        let what = "3 rows over 600 keys, every key masked out";
        out.push(cmp_shape(
            what,
            &y,
            &[1, h, sq5, d5],
            vec![f64::NAN; h * sq5 * d5],
            1.0,
        )?);
        Ok(out)
    });
}

/// f32 queries over keys and values in `kv` (f16 or bf16, a KV cache kept narrower than the
/// activations): the reference reads the same rounded keys and values in f64, so the f32
/// tolerance applies. Three new rows over 5 keys of 8 dims (GQA 4/2, causal); 2 rows of 80
/// dims over the first 40 positions of a 48-position cache (the CPU's decode loop, keys
/// widened as they are read), one key masked; 70 rows after 5 keys (the CPU's path for many
/// rows, which widens them first).
fn attention_kv(s: &mut Suite, kv: DType) {
    let op = format!("attention, f32 queries, keys and values in {kv}");
    s.case_dtypes(&op, OpFamily::Matmul, &[DType::F32, kv], |dev| {
        let f32 = DType::F32;
        let mut out = Vec::new();
        for (sq, t, cap, d, causal, masked) in [
            (3, 5, 5, 8, true, None),
            (2, 40, 48, 80, false, Some(3)),
            (2, 40, 48, 80, true, None),
            (70, 75, 75, 8, true, Some(2)),
            // a long cache: the CPU splits the keys into chunks across its threads
            (3, 600, 640, 64, true, Some(300)),
            (1, 530, 530, 16, false, None),
        ] {
            let (h, hkv) = (4, 2);
            let q = rand(h * sq * d, -1.0, 1.0, f32, 120 + sq as u64);
            // in a long cache the first 100 keys 4× longer: chunks with far apart maxima
            let k: Vec<f64> = rand(hkv * cap * d, -1.0, 1.0, kv, 121 + t as u64)
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    if t > 100 && i / d % cap < 100 {
                        4.0 * x
                    } else {
                        x
                    }
                })
                .collect();
            let v = rand(hkv * cap * d, -1.0, 1.0, kv, 122 + d as u64);
            // the first t positions of a cache of `cap`
            let first = |x: &[f64]| -> Vec<f64> {
                (0..hkv)
                    .flat_map(|g| x[g * cap * d..(g * cap + t) * d].to_vec())
                    .collect()
            };
            let tq = tensor(dev, f32, &[1, h, sq, d], &q)?;
            let tk = tensor(dev, kv, &[1, hkv, cap, d], &k)?.narrow(2, 0, t)?;
            let tv = tensor(dev, kv, &[1, hkv, cap, d], &v)?.narrow(2, 0, t)?;
            let mut mask = vec![0.0; t];
            if let Some(j) = masked {
                mask[j] = f64::NEG_INFINITY;
            }
            let tmask = match masked {
                Some(_) => Some(tensor(dev, f32, &[1, 1, 1, t], &mask)?),
                None => None,
            };
            let qv = |hi: usize, i: usize, x: usize| q[(hi * sq + i) * d + x];
            let shape = (h, hkv, sq, t, d);
            let exp = attention_ref(&qv, &first(&k), &first(&v), shape, causal, &mask);
            let y = Tensor::attention(&tq, &tk, &tv, tmask.as_ref(), causal, None)?;
            let what = format!(
                "{sq} rows over {t} of {cap} cached keys, {d} dims{}{}",
                if causal { ", causal" } else { "" },
                masked.map_or(String::new(), |j| format!(", key {j} masked"))
            );
            out.push(cmp_shape(&what, &y, &[1, h, sq, d], exp, 4.0)?);
        }
        // the output keeps the queries' dtype
        if out.iter().all(|c| c.dtype == f32) {
            Ok(out)
        } else {
            Err(plumb::Error::invalid(
                "attention",
                "output not in the queries' dtype",
            ))
        }
    });
}

per_dtype!(attention: attention_f32 = DType::F32, attention_f16 = DType::F16,
    attention_bf16 = DType::BF16, attention_f64 = DType::F64);
per_dtype!(attention_kv: attention_kv_f16 = DType::F16, attention_kv_bf16 = DType::BF16);
