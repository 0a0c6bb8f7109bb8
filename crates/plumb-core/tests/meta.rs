//! The meta device runs the op set on shapes and dtypes only and records the trace.

use plumb_core::{DType, Device, Error, OpFamily, Tensor};

#[test]
fn meta_traces_shapes_and_dtypes() {
    let meta = Device::meta();
    let x = Tensor::zeros([2, 3, 8], DType::F16, &meta).unwrap();
    let w = Tensor::zeros([8, 4], DType::F16, &meta).unwrap();
    let y = x.matmul(&w).unwrap().softmax(-1).unwrap();
    assert_eq!(y.shape(), &[2, 3, 4]);
    let idx = y.argmax(-1, false).unwrap();
    assert_eq!(idx.shape(), &[2, 3]);
    assert_eq!(idx.dtype(), DType::I64);
    let q = Tensor::from_bytes(
        &vec![0u8; DType::Q4_1.storage_bytes(16 * 64)],
        DType::Q4_1,
        [16, 64],
        &meta,
    )
    .unwrap();
    let a = Tensor::zeros([5, 64], DType::F32, &meta).unwrap();
    assert_eq!(a.qmatmul(&q).unwrap().shape(), &[5, 16]);

    let trace = meta.take_trace();
    let ops: Vec<&str> = trace.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(ops, ["matmul", "softmax", "argmax", "qmatmul"]);
    assert_eq!(trace[0].family, OpFamily::Matmul);
    assert_eq!(
        trace[0].inputs,
        vec![(DType::F16, vec![2, 3, 8]), (DType::F16, vec![2, 8, 4])]
    );
    assert_eq!(trace[0].output, (DType::F16, vec![2, 3, 4]));
    assert_eq!(trace[3].dtype, DType::Q4_1);
    assert!(meta.take_trace().is_empty());
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let meta = Device::meta();
    let a = Tensor::zeros([2, 3], DType::F32, &meta).unwrap();
    let b = Tensor::zeros([4, 5], DType::F32, &meta).unwrap();
    let e = a.matmul(&b).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("matmul") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );

    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("add") && e.contains("broadcast"), "{e}");

    let c = Tensor::zeros([2, 3], DType::F16, &meta).unwrap();
    let e = a.add(&c).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch { .. }));
    assert!(e.to_string().contains("f32 vs f16"), "{e}");

    let e = a.sum(5, false).unwrap_err().to_string();
    assert!(e.contains("sum") && e.contains("dim 5"), "{e}");

    let e = a.narrow(1, 2, 5).unwrap_err().to_string();
    assert!(e.contains("narrow") && e.contains("out of range"), "{e}");

    let e = Tensor::from_slice(&[1.0f32, 2.0], [3], &meta)
        .unwrap_err()
        .to_string();
    assert!(e.contains("from_slice") && e.contains("[3]"), "{e}");

    let i = Tensor::zeros([2, 3], DType::I32, &meta).unwrap();
    let e = i.exp().unwrap_err().to_string();
    assert!(e.contains("exp") && e.contains("i32"), "{e}");

    let e = "f128".parse::<DType>().unwrap_err().to_string();
    assert!(e.contains("unknown dtype 'f128'"), "{e}");
}
