//! Matmul (plain, transposed views, batch broadcast), quantized matmul and RoPE (both layouts);
//! attention is in `attention.rs`.

use crate::elementwise::per_dtype;
use crate::harness::{cmp, cmp_shape, rand, tensor, transpose, Suite};
use plumb::{DType, OpFamily, Tensor, UnaryOp};

/// [batch, m, k] × [batch, k, n] on the host.
fn mm(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(batch * m * n);
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out.push(
                    (0..k)
                        .map(|p| a[bi * m * k + i * k + p] * b[bi * k * n + p * n + j])
                        .sum(),
                );
            }
        }
    }
    out
}

fn matmul(s: &mut Suite, dt: DType) {
    s.case("matmul", OpFamily::Matmul, dt, |dev| {
        let (m, k, n) = (5, 19, 7);
        let a = rand(2 * m * k, -1.0, 1.0, dt, 71);
        let b = rand(2 * k * n, -1.0, 1.0, dt, 72);
        let ta = tensor(dev, dt, &[2, m, k], &a)?;
        let tb = tensor(dev, dt, &[2, k, n], &b)?;
        let mut out = vec![cmp(
            "[2,5,19]×[2,19,7]",
            &ta.matmul(&tb)?,
            mm(&a, &b, 2, m, k, n),
            2.0,
        )?];
        // both operands as transposed views of their transposes
        let at: Vec<f64> = (0..2)
            .flat_map(|bi| transpose(&a[bi * m * k..(bi + 1) * m * k], m, k))
            .collect();
        let bt: Vec<f64> = (0..2)
            .flat_map(|bi| transpose(&b[bi * k * n..(bi + 1) * k * n], k, n))
            .collect();
        let tat = tensor(dev, dt, &[2, k, m], &at)?.t()?;
        let tbt = tensor(dev, dt, &[2, n, k], &bt)?.t()?;
        out.push(cmp(
            "aᵀᵀ × bᵀᵀ (strided)",
            &tat.matmul(&tbt)?,
            mm(&a, &b, 2, m, k, n),
            2.0,
        )?);
        // tile-sized shapes (GPU tensor-core paths take M, N multiples of 32 and K of 16), with
        // b row-major and as the transpose of a row-major [n, k] (the linear-layer case); a
        // batch of 128 runs the 64-wide blocks, the 2-batch products the 32-wide ones
        let (tm, tk, tn) = (128, 48, 64);
        let ga = rand(2 * tm * tk, -1.0, 1.0, dt, 75);
        let gb = rand(tk * tn, -1.0, 1.0, dt, 76);
        let tga = tensor(dev, dt, &[2, tm, tk], &ga)?;
        let gbt = transpose(&gb, tk, tn);
        let want = mm(&ga, &[&gb[..], &gb[..]].concat(), 2, tm, tk, tn);
        out.push(cmp(
            "[2,128,48]×[48,64]",
            &tga.matmul(&tensor(dev, dt, &[tk, tn], &gb)?)?,
            want.clone(),
            2.0,
        )?);
        out.push(cmp(
            "[2,128,48]×([64,48])ᵀ",
            &tga.matmul(&tensor(dev, dt, &[tn, tk], &gbt)?.t()?)?,
            want,
            2.0,
        )?);
        let (bm, bk, bn, nb) = (128, 16, 128, 64);
        let xa = rand(nb * bm * bk, -1.0, 1.0, dt, 77);
        let xb = rand(bk * bn, -1.0, 1.0, dt, 78);
        let txa = tensor(dev, dt, &[nb, bm, bk], &xa)?;
        let want = mm(&xa, &xb.repeat(nb), nb, bm, bk, bn);
        out.push(cmp(
            "[64,128,16]×([128,16])ᵀ",
            &txa.matmul(&tensor(dev, dt, &[bn, bk], &transpose(&xb, bk, bn))?.t()?)?,
            want.clone(),
            2.0,
        )?);
        out.push(cmp(
            "[64,128,16]×[16,128]",
            &txa.matmul(&tensor(dev, dt, &[bk, bn], &xb)?)?,
            want,
            2.0,
        )?);
        // one weight for the whole batch: [2, m, k] × [k, n] (CPU: one gemm over 2·m rows)
        let w = &b[..k * n];
        out.push(cmp(
            "[2,5,19]×[19,7]",
            &ta.matmul(&tensor(dev, dt, &[k, n], w)?)?,
            mm(&a, &[w, w].concat(), 2, m, k, n),
            2.0,
        )?);
        // a linear layer: x [2, m, k] · w [n, k]ᵀ + bias [n] (fused on the CPU), and a 1-D x
        let wl = transpose(w, k, n); // [n, k]
        let bias = rand(n, -1.0, 1.0, dt, 79);
        let tw = tensor(dev, dt, &[n, k], &wl)?;
        let tbias = tensor(dev, dt, &[n], &bias)?;
        let with_bias = |y: Vec<f64>| -> Vec<f64> {
            y.iter().enumerate().map(|(i, v)| v + bias[i % n]).collect()
        };
        out.push(cmp(
            "linear [2,5,19]·[7,19]ᵀ + [7]",
            &ta.linear(&tw, Some(&tbias))?,
            with_bias(mm(&a, &[w, w].concat(), 2, m, k, n)),
            2.0,
        )?);
        out.push(cmp(
            "linear [19]·[7,19]ᵀ + [7]",
            &tensor(dev, dt, &[k], &a[..k])?.linear(&tw, Some(&tbias))?,
            with_bias(mm(&a[..k], w, 1, 1, k, n)),
            2.0,
        )?);
        // a linear layer wide enough to split into blocks of columns on a CPU team (each block
        // adds its own columns of the bias), and one over k = 0 (the bias alone)
        let (lm, lk, ln) = (40, 24, 96);
        let xl = rand(2 * lm * lk, -1.0, 1.0, dt, 80);
        let wl = rand(ln * lk, -1.0, 1.0, dt, 81); // [n, k]
        let bl = rand(ln, -1.0, 1.0, dt, 82);
        let mut want = mm(&xl, &transpose(&wl, ln, lk), 1, 2 * lm, lk, ln);
        want.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += bl[i % ln]);
        let tbl = tensor(dev, dt, &[ln], &bl)?;
        out.push(cmp(
            "linear [2,40,24]·[96,24]ᵀ + [96]",
            &tensor(dev, dt, &[2, lm, lk], &xl)?
                .linear(&tensor(dev, dt, &[ln, lk], &wl)?, Some(&tbl))?,
            want.clone(),
            2.0,
        )?);
        out.push(cmp(
            "linear_act silu [2,40,24]·[96,24]ᵀ + [96]",
            &tensor(dev, dt, &[2, lm, lk], &xl)?.linear_act(
                &tensor(dev, dt, &[ln, lk], &wl)?,
                Some(&tbl),
                UnaryOp::Silu,
            )?,
            want.iter().map(|&v| UnaryOp::Silu.reference(v)).collect(),
            2.0,
        )?);
        let empty = |shape: &[usize]| Tensor::zeros(shape, dt, dev);
        out.push(cmp(
            "linear [3,0]·[96,0]ᵀ + [96]",
            &empty(&[3, 0])?.linear(&empty(&[ln, 0])?, Some(&tbl))?,
            [bl.clone(), bl.clone(), bl.clone()].concat(),
            2.0,
        )?);
        // a linear layer over a weight kept in-dim-major (the transpose of a contiguous [k, n],
        // as the model loaders store it): on an AVX-512 CPU few rows read it in place
        // (kernels/matmul_rows.rs): chunks of k, a partial strip of columns, a partial group
        // of rows, the bias on the last chunk
        let (im, ik, inn) = (13, 300, 130);
        let xi = rand(im * ik, -1.0, 1.0, dt, 83);
        let wi = rand(ik * inn, -1.0, 1.0, dt, 84); // [k, n]
        let bi = rand(inn, -1.0, 1.0, dt, 85);
        let mut want = mm(&xi, &wi, 1, im, ik, inn);
        want.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += bi[i % inn]);
        out.push(cmp(
            "linear [1,13,300]·[130,300]ᵀ + [130], w in-dim-major",
            &tensor(dev, dt, &[1, im, ik], &xi)?.linear(
                &tensor(dev, dt, &[ik, inn], &wi)?.t()?,
                Some(&tensor(dev, dt, &[inn], &bi)?),
            )?,
            want.clone(),
            2.0,
        )?);
        // the same layers with their activation (`linear_act`: one op where the device fuses
        // it, on the CPU applied to each block of the product): few rows over the in-dim-major
        // weight, the team's gemm blocks over a row-major one, and one row
        let act =
            |y: &[f64], op: UnaryOp| -> Vec<f64> { y.iter().map(|&v| op.reference(v)).collect() };
        let wi_t = tensor(dev, dt, &[ik, inn], &wi)?.t()?;
        let bi_t = tensor(dev, dt, &[inn], &bi)?;
        out.push(cmp(
            "linear_act gelu [1,13,300]·[130,300]ᵀ + [130], w in-dim-major",
            &tensor(dev, dt, &[1, im, ik], &xi)?.linear_act(&wi_t, Some(&bi_t), UnaryOp::Gelu)?,
            act(&want, UnaryOp::Gelu),
            2.0,
        )?);
        out.push(cmp(
            "linear_act gelu_tanh [1,300]·[130,300]ᵀ + [130], w in-dim-major",
            &tensor(dev, dt, &[1, ik], &xi[..ik])?.linear_act(
                &wi_t,
                Some(&bi_t),
                UnaryOp::GeluTanh,
            )?,
            act(&want[..inn], UnaryOp::GeluTanh),
            2.0,
        )?);
        // the same layers plus a residual (`linear_add`: one op where the device fuses it, on
        // the CPU added to each block of the product): few rows over the in-dim-major weight,
        // the team's gemm blocks with the residual read through a transposed view, one row, and
        // a residual that only broadcasts to the output (the two ops)
        let plus =
            |y: &[f64], r: &[f64]| -> Vec<f64> { y.iter().zip(r).map(|(a, b)| a + b).collect() };
        let ri = rand(im * inn, -1.0, 1.0, dt, 86);
        out.push(cmp(
            "linear_add [1,13,300]·[130,300]ᵀ + [130] + [1,13,130], w in-dim-major",
            &tensor(dev, dt, &[1, im, ik], &xi)?.linear_add(
                &wi_t,
                Some(&bi_t),
                &tensor(dev, dt, &[1, im, inn], &ri)?,
            )?,
            plus(&want, &ri),
            2.0,
        )?);
        out.push(cmp(
            "linear_add [300]·[130,300]ᵀ + [130] + [130]",
            &tensor(dev, dt, &[ik], &xi[..ik])?.linear_add(
                &wi_t,
                Some(&bi_t),
                &tensor(dev, dt, &[inn], &ri[..inn])?,
            )?,
            plus(&want[..inn], &ri[..inn]),
            2.0,
        )?);
        let rl = rand(2 * lm * ln, -1.0, 1.0, dt, 87); // [2, 96, 40]
        let rl_t: Vec<f64> = (0..2 * lm * ln)
            .map(|i| {
                let (bt, r, c) = (i / (lm * ln), i / ln % lm, i % ln);
                rl[bt * lm * ln + c * lm + r]
            })
            .collect();
        let mut want_l = mm(&xl, &transpose(&wl, ln, lk), 1, 2 * lm, lk, ln);
        want_l
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += bl[i % ln]);
        out.push(cmp(
            "linear_add [2,40,24]·[96,24]ᵀ + [96] + [2,96,40]ᵀ",
            &tensor(dev, dt, &[2, lm, lk], &xl)?.linear_add(
                &tensor(dev, dt, &[ln, lk], &wl)?,
                Some(&tbl),
                &tensor(dev, dt, &[2, ln, lm], &rl)?.transpose(1, 2)?,
            )?,
            plus(&want_l, &rl_t),
            2.0,
        )?);
        out.push(cmp(
            "linear_add [2,40,24]·[96,24]ᵀ + [96] + [96] (broadcast)",
            &tensor(dev, dt, &[2, lm, lk], &xl)?.linear_add(
                &tensor(dev, dt, &[ln, lk], &wl)?,
                Some(&tbl),
                &tbl,
            )?,
            want_l
                .iter()
                .enumerate()
                .map(|(i, v)| v + bl[i % ln])
                .collect(),
            2.0,
        )?);
        // more rows than the CPU's few-row kernels take (120 > 96): the fused layers through
        // the blocked product (gemm_team's epilogue; for halves on widened copies)
        let x3 = rand(3 * lm * lk, -1.0, 1.0, dt, 88);
        let r3 = rand(3 * lm * ln, -1.0, 1.0, dt, 89);
        let mut want3 = mm(&x3, &transpose(&wl, ln, lk), 1, 3 * lm, lk, ln);
        want3
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += bl[i % ln]);
        out.push(cmp(
            "linear_act gelu [3,40,24]·[96,24]ᵀ + [96]",
            &tensor(dev, dt, &[3, lm, lk], &x3)?.linear_act(
                &tensor(dev, dt, &[ln, lk], &wl)?,
                Some(&tbl),
                UnaryOp::Gelu,
            )?,
            want3.iter().map(|&v| UnaryOp::Gelu.reference(v)).collect(),
            2.0,
        )?);
        out.push(cmp(
            "linear_add [3,40,24]·[96,24]ᵀ + [96] + [3,40,96]",
            &tensor(dev, dt, &[3, lm, lk], &x3)?.linear_add(
                &tensor(dev, dt, &[ln, lk], &wl)?,
                Some(&tbl),
                &tensor(dev, dt, &[3, lm, ln], &r3)?,
            )?,
            plus(&want3, &r3),
            2.0,
        )?);
        // one row × a wide matrix read through a column window (row stride 310, offset 5)
        let wide = rand(k * 310, -1.0, 1.0, dt, 74);
        let win: Vec<f64> = (0..k)
            .flat_map(|r| wide[r * 310 + 5..r * 310 + 305].to_vec())
            .collect();
        let tw = tensor(dev, dt, &[k, 310], &wide)?.narrow(1, 5, 300)?;
        let x1 = tensor(dev, dt, &[1, k], &a[..k])?;
        out.push(cmp(
            "[1,19]×[19,300] window",
            &x1.matmul(&tw)?,
            mm(&a[..k], &win, 1, 1, k, 300),
            2.0,
        )?);
        // one row × a matrix big enough that the CPU splits its rows into runs and its columns
        // into two bands, then adds the runs' partial sums (k not a multiple of 4, and each
        // band's width not a multiple of 8 or 16)
        let (vk, vn) = (70, 2100);
        let vx = rand(vk, -1.0, 1.0, dt, 83);
        let vw = rand(vk * vn, -1.0, 1.0, dt, 84);
        out.push(cmp(
            "[1,70]×[70,2100]",
            &tensor(dev, dt, &[1, vk], &vx)?.matmul(&tensor(dev, dt, &[vk, vn], &vw)?)?,
            mm(&vx, &vw, 1, 1, vk, vn),
            2.0,
        )?);
        // batch broadcast: [2, 1, m, k] × [3, k, n] → [2, 3, m, n]
        let b3 = rand(3 * k * n, -1.0, 1.0, dt, 73);
        let ta4 = ta.unsqueeze(1)?;
        let tb3 = tensor(dev, dt, &[3, k, n], &b3)?;
        let mut exp = Vec::new();
        for i in 0..2 {
            for j in 0..3 {
                exp.extend(mm(
                    &a[i * m * k..(i + 1) * m * k],
                    &b3[j * k * n..(j + 1) * k * n],
                    1,
                    m,
                    k,
                    n,
                ));
            }
        }
        out.push(cmp_shape(
            "[2,1,5,19]×[3,19,7]",
            &ta4.matmul(&tb3)?,
            &[2, 3, m, n],
            exp,
            2.0,
        )?);
        // a 2-D weight shared by every batch
        let w = rand(k * n, -1.0, 1.0, dt, 74);
        let tw = tensor(dev, dt, &[k, n], &w)?;
        let exp: Vec<f64> = (0..2)
            .flat_map(|i| mm(&a[i * m * k..(i + 1) * m * k], &w, 1, m, k, n))
            .collect();
        out.push(cmp("[2,5,19]×[19,7]", &ta.matmul(&tw)?, exp, 2.0)?);
        Ok(out)
    });
}

/// A linear weight as the model loaders keep it: [n, k] over an in-dim-major storage, then
/// `packed_for_matmul` (the CPU packs f32 into its AVX2 kernel's panels where that kernel runs,
/// and bf16 into the `vdpbf16ps` kernel's where that one is chosen, for n a multiple of 64;
/// other devices and dtypes keep it). Every reader must see the same values: the fused linear
/// layers over one row, a few, a batch folded into rows and enough for two threads, a plain
/// matmul, a view that is not the whole weight, a reduction and the read-back, with two and
/// three depth blocks (k = 300, 600).
fn linear_packed(s: &mut Suite, dt: DType) {
    s.case("linear_packed", OpFamily::Matmul, dt, |dev| {
        let mut out = Vec::new();
        for (k, n) in [(300, 160), (600, 48), (300, 128)] {
            let wt = rand(k * n, -1.0, 1.0, dt, 91); // [k, n]
            let w = tensor(dev, dt, &[k, n], &wt)?.t()?.packed_for_matmul()?;
            let bias = rand(n, -1.0, 1.0, dt, 92);
            let tbias = tensor(dev, dt, &[n], &bias)?;
            for shape in [vec![1usize], vec![7], vec![3, 15], vec![150]] {
                let m: usize = shape.iter().product();
                let x = rand(m * k, -1.0, 1.0, dt, 93);
                let mut xs = shape.clone();
                xs.push(k);
                let tx = tensor(dev, dt, &xs, &x)?;
                let y = mm(&x, &wt, 1, m, k, n);
                let yb: Vec<f64> = y.iter().enumerate().map(|(i, v)| v + bias[i % n]).collect();
                let res = rand(m * n, -1.0, 1.0, dt, 94);
                let mut ys = shape.clone();
                ys.push(n);
                let tres = tensor(dev, dt, &ys, &res)?;
                let what = |op: &str| format!("{op} {xs:?}·[{n},{k}]ᵀ, w packed");
                out.push(cmp(
                    &what("linear"),
                    &tx.linear(&w, Some(&tbias))?,
                    yb.clone(),
                    2.0,
                )?);
                out.push(cmp(
                    &what("linear_act gelu"),
                    &tx.linear_act(&w, Some(&tbias), UnaryOp::Gelu)?,
                    yb.iter().map(|&v| UnaryOp::Gelu.reference(v)).collect(),
                    2.0,
                )?);
                out.push(cmp(
                    &what("linear_add"),
                    &tx.linear_add(&w, Some(&tbias), &tres)?,
                    yb.iter().zip(&res).map(|(v, r)| v + r).collect(),
                    2.0,
                )?);
                out.push(cmp(&what("matmul"), &tx.matmul(&w.t()?)?, y, 2.0)?);
            }
            // rows 16.. of w: columns 16.. of wᵀ, a view that is not the whole packed weight
            let x = rand(5 * k, -1.0, 1.0, dt, 95);
            let tail: Vec<f64> = (0..k)
                .flat_map(|p| wt[p * n + 16..(p + 1) * n].to_vec())
                .collect();
            out.push(cmp(
                &format!("[5,{k}]·(rows 16.. of [{n},{k}])ᵀ, w packed"),
                &tensor(dev, dt, &[5, k], &x)?.matmul(&w.narrow(0, 16, n - 16)?.t()?)?,
                mm(&x, &tail, 1, 5, k, n - 16),
                2.0,
            )?);
            let sums: Vec<f64> = (0..n)
                .map(|j| (0..k).map(|p| wt[p * n + j]).sum())
                .collect();
            out.push(cmp(
                &format!("sum over k of [{n},{k}], w packed"),
                &w.sum(1, false)?,
                sums,
                (k as f64).sqrt(),
            )?);
            out.push(cmp(
                &format!("read back [{n},{k}], w packed"),
                &w,
                transpose(&wt, k, n),
                1.0,
            )?);
            // a packed weight written into (its own storage): the same values as a plain one
            let row = rand(k, -1.0, 1.0, dt, 96);
            let mut w = w;
            w.write_slice(0, 1, &tensor(dev, dt, &[1, k], &row)?)?;
            let mut want = transpose(&wt, k, n);
            want[k..2 * k].copy_from_slice(&row);
            out.push(cmp(
                &format!("write_slice row 1 of [{n},{k}], w packed"),
                &w,
                want,
                1.0,
            )?);
        }
        Ok(out)
    });
}

/// Decode GGUF blocks on the host, written from the format description (MODELS.md / ggml).
fn dequant(dtype: DType, bytes: &[u8], n: usize) -> Vec<f64> {
    let f16 = |b: &[u8], i: usize| half::f16::from_le_bytes([b[i], b[i + 1]]).to_f64();
    let mut out = vec![0.0; n];
    for (bi, blk) in bytes.chunks(dtype.block_bytes()).enumerate().take(n / 32) {
        let o = &mut out[bi * 32..bi * 32 + 32];
        match dtype {
            DType::Q8_0 => {
                for j in 0..32 {
                    o[j] = blk[2 + j] as i8 as f64 * f16(blk, 0);
                }
            }
            DType::Q4_0 => {
                for j in 0..16 {
                    o[j] = ((blk[2 + j] & 15) as f64 - 8.0) * f16(blk, 0);
                    o[j + 16] = ((blk[2 + j] >> 4) as f64 - 8.0) * f16(blk, 0);
                }
            }
            DType::Q4_1 => {
                for j in 0..16 {
                    o[j] = (blk[4 + j] & 15) as f64 * f16(blk, 0) + f16(blk, 2);
                    o[j + 16] = (blk[4 + j] >> 4) as f64 * f16(blk, 0) + f16(blk, 2);
                }
            }
            _ => {}
        }
    }
    out
}

/// x [rows, k] (f32, f16) × wᵀ, w quantized [n, k]; compared with the exactly decoded weights.
/// Each case runs on the weights as uploaded and as `packed_for_qmatmul` lays them out (the CPU
/// packs 16 rows at a time where it has AVX-512 VNNI: 37 rows are two groups and a stored tail),
/// and on rows 16.. of the packed tensor (a view that is not the whole packed storage).
fn qmatmul(s: &mut Suite, wdt: DType) {
    s.case("qmatmul", OpFamily::QMatmul, wdt, |dev| {
        let (k, n) = (64, 37);
        let wv = rand(n * k, -1.0, 1.0, DType::F32, 81);
        let w = Tensor::from_f64(&wv, wdt, [n, k], dev)?;
        let wq = dequant(wdt, &w.to_bytes()?, n * k);
        let packed = w.packed_for_qmatmul()?;
        let mut out = Vec::new();
        if packed.to_bytes()? != w.to_bytes()? {
            return Err(plumb::Error::invalid(
                "qmatmul",
                "the packed weights read back other bytes than were uploaded",
            ));
        }
        let tail = packed.narrow(0, 16, n - 16)?;
        // 3 rows (a short prompt), 1 row (decoding: weight rows in groups of 4 plus a
        // remainder), 9 rows (the CPU's and CUDA's dequantize-then-gemm path) and 40 rows
        // (wgpu's)
        for (rows, xdt) in [
            (3, DType::F32),
            (3, DType::F16),
            (1, DType::F32),
            (9, DType::F32),
            (9, DType::F16),
            (40, DType::F32),
            (40, DType::F16),
        ] {
            let x = rand(rows * k, -1.0, 1.0, xdt, 82);
            let tx = tensor(dev, xdt, &[rows, k], &x)?;
            let exp = |j0: usize, cols: usize| -> Vec<f64> {
                (0..rows * cols)
                    .map(|i| {
                        let j = j0 + i % cols;
                        (0..k).map(|p| x[(i / cols) * k + p] * wq[j * k + p]).sum()
                    })
                    .collect()
            };
            // the weights are decoded exactly, so only the activations' handling is measured:
            // kernels may quantize them to q8_0 blocks (llama.cpp does): each activation off by
            // up to 1/254 of its block's maximum, summed over k products → q8_0's tolerance × 4
            for (what, wt, j0) in [
                ("", &w, 0),
                (" (packed)", &packed, 0),
                (" (packed rows 16..)", &tail, 16),
            ] {
                let cols = wt.shape()[0];
                let label = format!("{rows} rows of {xdt} activations{what}");
                let mut c = cmp(&label, &tx.qmatmul(wt)?, exp(j0, cols), 4.0)?;
                c.dtype = DType::Q8_0;
                out.push(c);
            }
        }
        out.push(cmp(
            "dequantize to f32",
            &w.dequantize(DType::F32)?,
            wq.clone(),
            1.0,
        )?);
        out.push(cmp(
            "dequantize to f32 (packed)",
            &packed.dequantize(DType::F32)?,
            wq,
            1.0,
        )?);
        Ok(out)
    });
}

/// RoPE reference: rotate-half pairs (i, i + d/2) or interleaved pairs (2i, 2i + 1).
fn rope_ref(
    x: &[f64],
    cos: &[f64],
    sin: &[f64],
    bh: usize,
    t: usize,
    d: usize,
    inter: bool,
) -> Vec<f64> {
    let mut out = x.to_vec();
    let h = d / 2;
    for r in 0..bh {
        for p in 0..t {
            let base = (r * t + p) * d;
            for i in 0..h {
                let (a, b) = if inter {
                    (2 * i, 2 * i + 1)
                } else {
                    (i, i + h)
                };
                let (c, s) = (cos[p * h + i], sin[p * h + i]);
                out[base + a] = x[base + a] * c - x[base + b] * s;
                out[base + b] = x[base + b] * c + x[base + a] * s;
            }
        }
    }
    out
}

fn rope(s: &mut Suite, dt: DType) {
    for inter in [false, true] {
        let op = if inter { "rope_interleaved" } else { "rope" };
        s.case(op, OpFamily::Rope, dt, |dev| {
            let (b, h, t, d) = (1, 3, 4, 8);
            let x = rand(b * h * t * d, -2.0, 2.0, dt, 91);
            let mut cos = Vec::new();
            let mut sin = Vec::new();
            for p in 0..t {
                for i in 0..d / 2 {
                    let th = p as f64 / 10000f64.powf(2.0 * i as f64 / d as f64);
                    cos.push(crate::harness::round(dt, th.cos()));
                    sin.push(crate::harness::round(dt, th.sin()));
                }
            }
            let tx = tensor(dev, dt, &[b, h, t, d], &x)?;
            let (tc, ts) = (
                tensor(dev, dt, &[t, d / 2], &cos)?,
                tensor(dev, dt, &[t, d / 2], &sin)?,
            );
            let exp = rope_ref(&x, &cos, &sin, b * h, t, d, inter);
            Ok(vec![cmp(op, &tx.rope(&tc, &ts, inter)?, exp, 1.0)?])
        });
    }
}

per_dtype!(matmul: matmul_f32 = DType::F32, matmul_f16 = DType::F16, matmul_bf16 = DType::BF16,
    matmul_f64 = DType::F64);
per_dtype!(linear_packed: linear_packed_f32 = DType::F32, linear_packed_f16 = DType::F16,
    linear_packed_bf16 = DType::BF16, linear_packed_f64 = DType::F64);
per_dtype!(qmatmul: qmatmul_q8_0 = DType::Q8_0, qmatmul_q4_0 = DType::Q4_0,
    qmatmul_q4_1 = DType::Q4_1);
per_dtype!(rope: rope_f32 = DType::F32, rope_f16 = DType::F16, rope_bf16 = DType::BF16,
    rope_f64 = DType::F64);
