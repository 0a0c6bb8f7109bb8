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

#[test]
fn a_gpu_allocation_beyond_free_memory_is_an_error() {
    // devices whose memory is known and which allocate it on demand (CUDA): one buffer of
    // nearly all of it cannot fit next to the context's own memory
    let devs: Vec<_> = plumb::devices()
        .unwrap()
        .into_iter()
        .filter(|d| d.holds_data() && d.info().api == "CUDA")
        .collect();
    if devs.is_empty() {
        println!("skipped: no CUDA device on this machine");
    }
    for d in devs {
        let mem = d.capabilities().limits.memory_bytes.unwrap();
        let n = ((mem - (1 << 20)) / 4) as usize;
        let e = Tensor::zeros([n], DType::F32, &d).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(d.id()) && msg.contains("f32"), "{msg}");
        println!("{}: {msg}", d.id());
        // the device still works afterwards
        let t = Tensor::from_f64(&[1.0, 2.0], DType::F32, [2], &d).unwrap();
        assert_eq!(t.add(&t).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
    }
}
