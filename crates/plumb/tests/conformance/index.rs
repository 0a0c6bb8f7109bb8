//! index_select, gather, embedding, cat and write_slice, for every plain dtype; casts between every
//! pair.

use crate::elementwise::per_dtype;
use crate::harness::{cmp, cmp_shape, rand, round, tensor, Suite};
use plumb::{DType, OpFamily, Tensor};

fn values(n: usize, dt: DType, seed: u64) -> Vec<f64> {
    match dt {
        DType::Bool => rand(n, 0.0, 2.0, DType::I32, seed),
        DType::U8 => rand(n, 0.0, 256.0, DType::I32, seed),
        d if d.is_float() => rand(n, -10.0, 10.0, d, seed),
        d => rand(n, -100000.0, 100000.0, d, seed),
    }
}

fn indexing(s: &mut Suite, dt: DType) {
    for ids_dt in [DType::I32, DType::I64] {
        s.case(
            &format!("index_select[{ids_dt} ids]"),
            OpFamily::Index,
            dt,
            |dev| {
                let (r, c) = (6, 5);
                let x = values(r * c, dt, 111);
                let t = tensor(dev, dt, &[r, c], &x)?;
                let ids = [4.0, 0.0, 5.0, 4.0];
                let tid = tensor(dev, ids_dt, &[4], &ids)?;
                let rows: Vec<f64> = ids
                    .iter()
                    .flat_map(|&i| x[i as usize * c..(i as usize + 1) * c].to_vec())
                    .collect();
                let cids = [2.0, 2.0, 0.0];
                let tcid = tensor(dev, ids_dt, &[3], &cids)?;
                let cols: Vec<f64> = (0..r)
                    .flat_map(|i| cids.iter().map(move |&j| (i, j as usize)))
                    .map(|(i, j)| x[i * c + j])
                    .collect();
                // embedding: ids of shape [2, 2] → [2, 2, c]
                let temb = tensor(dev, ids_dt, &[2, 2], &ids)?;
                Ok(vec![
                    cmp_shape(
                        "dim 0",
                        &t.index_select(&tid, 0)?,
                        &[4, c],
                        rows.clone(),
                        1.0,
                    )?,
                    cmp_shape("dim 1", &t.index_select(&tcid, 1)?, &[r, 3], cols, 1.0)?,
                    cmp_shape("embedding", &t.embedding(&temb)?, &[2, 2, c], rows, 1.0)?,
                ])
            },
        );
    }
    s.case("gather", OpFamily::Index, dt, |dev| {
        let (r, c) = (4, 6);
        let x = values(r * c, dt, 112);
        let t = tensor(dev, dt, &[r, c], &x)?;
        let g1: Vec<f64> = (0..r * 3).map(|i| ((i * 5 + 1) % c) as f64).collect();
        let e1: Vec<f64> = (0..r * 3)
            .map(|i| x[(i / 3) * c + g1[i] as usize])
            .collect();
        let g0: Vec<f64> = (0..2 * c).map(|i| ((i * 3 + 2) % r) as f64).collect();
        let e0: Vec<f64> = (0..2 * c).map(|i| x[g0[i] as usize * c + i % c]).collect();
        Ok(vec![
            cmp_shape(
                "dim 1",
                &t.gather(&tensor(dev, DType::I64, &[r, 3], &g1)?, 1)?,
                &[r, 3],
                e1,
                1.0,
            )?,
            cmp_shape(
                "dim 0",
                &t.gather(&tensor(dev, DType::I32, &[2, c], &g0)?, 0)?,
                &[2, c],
                e0,
                1.0,
            )?,
        ])
    });
    s.case("cat", OpFamily::Copy, dt, |dev| {
        let a = values(6, dt, 113);
        let b = values(9, dt, 114);
        let ta = tensor(dev, dt, &[2, 3], &a)?;
        let tb = tensor(dev, dt, &[3, 3], &b)?;
        let mut e0 = a.clone();
        e0.extend(&b);
        let tc = tensor(dev, dt, &[2, 1], &[a[0], a[3]])?;
        let e1: Vec<f64> = (0..2)
            .flat_map(|i| {
                let mut row = a[i * 3..i * 3 + 3].to_vec();
                row.push(a[i * 3]);
                row.extend_from_slice(&a[i * 3..i * 3 + 3]);
                row
            })
            .collect();
        // a transposed (non-contiguous) input
        let tat = tensor(dev, dt, &[3, 2], &crate::harness::transpose(&a, 2, 3))?.t()?;
        Ok(vec![
            cmp_shape("dim 0", &Tensor::cat(&[&ta, &tb], 0)?, &[5, 3], e0, 1.0)?,
            cmp_shape(
                "dim 1, three inputs",
                &Tensor::cat(&[&ta, &tc, &tat], 1)?,
                &[2, 7],
                e1,
                1.0,
            )?,
        ])
    });
}

/// `write_slice` on every device: into a fresh tensor (in place where the device can), into one
/// shared with a clone (which must keep its values), along a middle dim, and from a transposed
/// source.
fn write_slice(s: &mut Suite, dt: DType) {
    s.case("write_slice", OpFamily::Copy, dt, |dev| {
        let (d0, d1, d2) = (2, 5, 3);
        let base = values(d0 * d1 * d2, dt, 121);
        let src = values(d0 * 2 * d2, dt, 122);
        // expected: positions 1..3 of dim 1 replaced by src
        let mut want = base.clone();
        for i in 0..d0 {
            for j in 0..2 {
                for k in 0..d2 {
                    want[(i * d1 + 1 + j) * d2 + k] = src[(i * 2 + j) * d2 + k];
                }
            }
        }
        let ts = tensor(dev, dt, &[d0, 2, d2], &src)?;
        let mut fresh = tensor(dev, dt, &[d0, d1, d2], &base)?;
        fresh.write_slice(1, 1, &ts)?;
        let mut shared = tensor(dev, dt, &[d0, d1, d2], &base)?;
        let keep = shared.clone();
        shared.write_slice(1, 1, &ts)?;
        // the source given transposed: [d0, d2, 2] data viewed as [d0, 2, d2]
        let src_t: Vec<f64> = (0..d0)
            .flat_map(|i| crate::harness::transpose(&src[i * 2 * d2..(i + 1) * 2 * d2], 2, d2))
            .collect();
        let tt = tensor(dev, dt, &[d0, d2, 2], &src_t)?.transpose(1, 2)?;
        let mut from_t = tensor(dev, dt, &[d0, d1, d2], &base)?;
        from_t.write_slice(-2, 1, &tt)?;
        let shape = [d0, d1, d2];
        Ok(vec![
            cmp_shape("fresh destination", &fresh, &shape, want.clone(), 1.0)?,
            cmp_shape("shared destination", &shared, &shape, want.clone(), 1.0)?,
            cmp_shape(
                "the clone keeps its values",
                &keep,
                &shape,
                base.clone(),
                1.0,
            )?,
            cmp_shape("transposed source", &from_t, &shape, want, 1.0)?,
        ])
    });
}

/// Source values for casts from `from`: fractions, negatives, values that saturate narrower
/// integers, and (for floats) ±∞ and NaN.
fn cast_sources(from: DType) -> Vec<f64> {
    let mut v = match from {
        DType::Bool => vec![0.0, 1.0, 1.0, 0.0],
        DType::U8 => vec![0.0, 1.0, 127.0, 128.0, 255.0, 42.0],
        DType::I32 | DType::I64 => vec![
            0.0,
            1.0,
            -1.0,
            127.0,
            -128.0,
            255.0,
            256.0,
            -300.0,
            70000.0,
            -70000.0,
            2_000_000.0,
        ],
        _ => vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.1,
            1.0 / 3.0,
            3.999,
            -7.75,
            255.9,
            300.0,
            -300.0,
            65504.0,
            70000.0,
            -70000.0,
            1e-5,
            3e9,
            -3e9,
        ],
    };
    if from.is_float() {
        v.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
    }
    v.into_iter().map(|x| round(from, x)).collect()
}

/// The documented cast rules applied in f64: round-to-nearest-even into floats, truncation toward
/// zero with saturation into integers (NaN → 0), `!= 0` into bool.
fn cast_ref(to: DType, v: f64) -> f64 {
    match to {
        DType::Bool => (v != 0.0) as u8 as f64,
        _ if to.is_float() => round(to, v),
        _ => round(to, v),
    }
}

fn casts(s: &mut Suite, from: DType) {
    for to in DType::PLAIN {
        // the dispatcher decides on the non-f32 end, and on the target too
        let ends: Vec<DType> = [from, to]
            .into_iter()
            .filter(|&d| d != DType::F32)
            .collect();
        let ends = if ends.is_empty() {
            vec![DType::F32]
        } else {
            ends
        };
        s.case_dtypes(
            &format!("cast {from}→{to}"),
            OpFamily::Cast,
            &ends,
            |dev| {
                let mut x = cast_sources(from);
                if !from.is_float() && !matches!(to, DType::Bool) && to.is_int() {
                    // integer narrowing is not specified (wrap or saturate): keep values every int holds
                    x.retain(|&v| (0.0..=127.0).contains(&v));
                }
                let t = tensor(dev, from, &[x.len()], &x)?;
                let exp: Vec<f64> = x.iter().map(|&v| cast_ref(to, v)).collect();
                let y = t.to_dtype(to)?;
                if y.dtype() != to {
                    return Err(plumb::Error::invalid(
                        "test",
                        format!("cast gave {}", y.dtype()),
                    ));
                }
                Ok(vec![cmp(&format!("{from}→{to}"), &y, exp, 1.0)?])
            },
        );
    }
}

per_dtype!(indexing: index_f32 = DType::F32, index_f16 = DType::F16, index_bf16 = DType::BF16,
    index_f64 = DType::F64, index_i32 = DType::I32, index_i64 = DType::I64, index_u8 = DType::U8,
    index_bool = DType::Bool);
per_dtype!(write_slice: write_slice_f32 = DType::F32, write_slice_f16 = DType::F16,
    write_slice_bf16 = DType::BF16, write_slice_i64 = DType::I64, write_slice_u8 = DType::U8);
per_dtype!(casts: cast_from_f32 = DType::F32, cast_from_f16 = DType::F16,
    cast_from_bf16 = DType::BF16, cast_from_f64 = DType::F64, cast_from_i32 = DType::I32,
    cast_from_i64 = DType::I64, cast_from_u8 = DType::U8, cast_from_bool = DType::Bool);
