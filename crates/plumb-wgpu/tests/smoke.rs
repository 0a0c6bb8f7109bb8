mod common;
use plumb_core::{DType, UnaryOp};

#[test]
fn smoke() {
    for (label, d) in common::devices() {
        println!("{label}: {:?}", d.info());
        let v = common::values(37, 1, -2.0, 2.0);
        let x = common::t(&v, DType::F32, &[37], &d);
        let y = x.unary(UnaryOp::Exp).unwrap().to_f64_vec().unwrap();
        let want: Vec<f64> = common::rounded(&v, DType::F32)
            .iter()
            .map(|x| x.exp())
            .collect();
        common::assert_close("exp", &y, &want, DType::F32, 1.0);
    }
}
