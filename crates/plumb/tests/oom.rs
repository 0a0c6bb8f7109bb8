//! An allocation the device cannot hold is an `OutOfMemory` error naming the op, dtype, shape
//! and device — never an allocator abort.

use plumb::{DType, Error, Tensor};

#[test]
fn impossible_allocations_are_errors() {
    let cpu = plumb::device("cpu").unwrap();
    let e = Tensor::zeros([1usize << 42], DType::F32, &cpu).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("cpu")
            && msg.contains("full")
            && msg.contains("f32")
            && msg.contains("4398046511104"),
        "{msg}"
    );

    // a shape whose element count overflows usize
    let e = Tensor::zeros([usize::MAX, 4], DType::F16, &cpu).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");

    // an op whose output would not fit: broadcasting two views into a huge result
    let a = Tensor::zeros([1 << 21, 1], DType::F32, &cpu).unwrap();
    let b = Tensor::zeros([1, 1 << 21], DType::F32, &cpu).unwrap();
    let e = a.add(&b).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    assert!(e.to_string().contains("add"), "{e}");
}
