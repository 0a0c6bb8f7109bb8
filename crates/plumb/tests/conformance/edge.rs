//! Edge cases: empty tensors, size-1 dims, NaN and ±∞ propagation.

use crate::elementwise::per_dtype;
use crate::harness::{cmp, cmp_shape, tensor, Suite};
use plumb::{DType, OpFamily, Tensor};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

fn empty(s: &mut Suite, dt: DType) {
    s.case("empty elementwise", OpFamily::Elementwise, dt, |dev| {
        let a = tensor(dev, dt, &[0, 3], &[])?;
        let b = tensor(dev, dt, &[3], &[1.0, 2.0, 3.0])?;
        Ok(vec![
            cmp_shape("[0,3] + [3]", &a.add(&b)?, &[0, 3], vec![], 1.0)?,
            cmp_shape("exp [0,3]", &a.exp()?, &[0, 3], vec![], 1.0)?,
        ])
    });
    s.case("empty reduce", OpFamily::Reduce, dt, |dev| {
        let a = tensor(dev, dt, &[2, 0], &[])?;
        let b = tensor(dev, dt, &[0, 3], &[])?;
        Ok(vec![
            cmp_shape(
                "sum over an empty dim",
                &a.sum(1, false)?,
                &[2],
                vec![0.0, 0.0],
                1.0,
            )?,
            cmp_shape(
                "sum over a full dim of nothing",
                &b.sum(1, false)?,
                &[0],
                vec![],
                1.0,
            )?,
        ])
    });
    s.case("empty matmul", OpFamily::Matmul, dt, |dev| {
        let a = tensor(dev, dt, &[2, 0], &[])?;
        let b = tensor(dev, dt, &[0, 3], &[])?;
        let c = tensor(dev, dt, &[0, 4], &[])?;
        let d = tensor(dev, dt, &[4, 3], &[1.0; 12])?;
        Ok(vec![
            cmp_shape(
                "[2,0]×[0,3] (k = 0)",
                &a.matmul(&b)?,
                &[2, 3],
                vec![0.0; 6],
                1.0,
            )?,
            cmp_shape("[0,4]×[4,3] (m = 0)", &c.matmul(&d)?, &[0, 3], vec![], 1.0)?,
        ])
    });
    s.case("empty softmax", OpFamily::Softmax, dt, |dev| {
        let a = tensor(dev, dt, &[0, 4], &[])?;
        Ok(vec![cmp_shape(
            "[0,4]",
            &a.softmax(-1)?,
            &[0, 4],
            vec![],
            1.0,
        )?])
    });
    s.case("empty cat", OpFamily::Copy, dt, |dev| {
        let a = tensor(dev, dt, &[0, 2], &[])?;
        let b = tensor(dev, dt, &[1, 2], &[5.0, 6.0])?;
        Ok(vec![cmp_shape(
            "[0,2] ++ [1,2]",
            &Tensor::cat(&[&a, &b], 0)?,
            &[1, 2],
            vec![5.0, 6.0],
            1.0,
        )?])
    });
}

fn size_one(s: &mut Suite, dt: DType) {
    s.case("size-1 dims", OpFamily::Elementwise, dt, |dev| {
        let a = tensor(dev, dt, &[1, 1, 4], &[1.0, 2.0, 3.0, 4.0])?;
        let b = tensor(dev, dt, &[3, 1], &[10.0, 20.0, 30.0])?;
        let exp: Vec<f64> = (0..12)
            .map(|i| (i % 4 + 1) as f64 + 10.0 * (i / 4 + 1) as f64)
            .collect();
        Ok(vec![cmp_shape(
            "[1,1,4] + [3,1]",
            &a.add(&b)?,
            &[1, 3, 4],
            exp,
            1.0,
        )?])
    });
    s.case("size-1 reduce", OpFamily::Reduce, dt, |dev| {
        let a = tensor(dev, dt, &[3, 1], &[1.0, -2.0, 3.0])?;
        Ok(vec![
            cmp_shape(
                "sum over a size-1 dim",
                &a.sum(1, false)?,
                &[3],
                vec![1.0, -2.0, 3.0],
                1.0,
            )?,
            cmp_shape(
                "max of one element",
                &a.max(0, true)?,
                &[1, 1],
                vec![3.0],
                1.0,
            )?,
        ])
    });
    s.case("size-1 matmul", OpFamily::Matmul, dt, |dev| {
        let a = tensor(dev, dt, &[1, 3], &[1.0, 2.0, 3.0])?;
        let b = tensor(dev, dt, &[3, 1], &[4.0, 5.0, 6.0])?;
        Ok(vec![cmp_shape(
            "[1,3]×[3,1]",
            &a.matmul(&b)?,
            &[1, 1],
            vec![32.0],
            1.0,
        )?])
    });
}

fn non_finite(s: &mut Suite, dt: DType) {
    s.case("NaN/Inf elementwise", OpFamily::Elementwise, dt, |dev| {
        let a = tensor(dev, dt, &[5], &[NAN, INF, -INF, 0.0, 1.0])?;
        let b = tensor(dev, dt, &[5], &[1.0, 1.0, 1.0, INF, NAN])?;
        Ok(vec![
            cmp("add", &a.add(&b)?, vec![NAN, INF, -INF, INF, NAN], 1.0)?,
            cmp("mul", &a.mul(&b)?, vec![NAN, INF, -INF, NAN, NAN], 1.0)?,
            cmp(
                "maximum propagates NaN",
                &a.maximum(&b)?,
                vec![NAN, INF, 1.0, INF, NAN],
                1.0,
            )?,
            cmp(
                "exp",
                &a.exp()?,
                vec![NAN, INF, 0.0, 1.0, std::f64::consts::E],
                1.0,
            )?,
            cmp(
                "sqrt",
                &tensor(dev, dt, &[3], &[-1.0, 0.0, INF])?.sqrt()?,
                vec![NAN, 0.0, INF],
                1.0,
            )?,
            cmp(
                "log",
                &tensor(dev, dt, &[2], &[0.0, -1.0])?.log()?,
                vec![-INF, NAN],
                1.0,
            )?,
        ])
    });
    s.case("NaN/Inf reduce", OpFamily::Reduce, dt, |dev| {
        let a = tensor(
            dev,
            dt,
            &[3, 3],
            &[1.0, NAN, 2.0, 1.0, INF, 2.0, -INF, 1.0, 2.0],
        )?;
        Ok(vec![cmp(
            "sum",
            &a.sum(-1, false)?,
            vec![NAN, INF, -INF],
            1.0,
        )?])
    });
    s.case("NaN/Inf softmax", OpFamily::Softmax, dt, |dev| {
        let a = tensor(dev, dt, &[2, 3], &[0.0, -INF, 0.0, 1.0, NAN, 1.0])?;
        let y = a.softmax(-1)?.to_f64_vec()?;
        // a masked (−∞) entry gets exactly 0; a row holding a NaN is NaN throughout (not
        // silently finite), also where the row is long enough for the vector lanes
        let t = tensor(dev, DType::F64, &[4], &[y[1], y[3], y[4], y[5]])?;
        let mut long = vec![0.5; 40];
        long[21] = NAN;
        let long = tensor(dev, dt, &[1, 40], &long)?.softmax(-1)?;
        Ok(vec![
            cmp(
                "masked entry is 0, the rest share 1",
                &a.softmax(-1)?.narrow(0, 0, 1)?,
                vec![0.5, 0.0, 0.5],
                1.0,
            )?,
            cmp("NaN row", &t, vec![0.0, NAN, NAN, NAN], 1.0)?,
            cmp("long NaN row", &long, vec![NAN; 40], 1.0)?,
        ])
    });
}

per_dtype!(empty: empty_f32 = DType::F32, empty_f16 = DType::F16);
per_dtype!(size_one: size_one_f32 = DType::F32, size_one_bf16 = DType::BF16);
per_dtype!(non_finite: non_finite_f32 = DType::F32, non_finite_f16 = DType::F16,
    non_finite_bf16 = DType::BF16, non_finite_f64 = DType::F64);
