//! `Tensor::write_slice`: in place on every device when the tensor owns its storage, a copy when the
//! storage is shared, traced on the meta device, and errors that name the op and shapes.

mod common;

use plumb::{DType, Error, Tensor};
use std::sync::Arc;

fn cpu() -> plumb::Device {
    plumb::device("cpu").unwrap()
}

#[test]
fn writes_in_place_when_the_storage_is_not_shared() {
    let _gpu = common::gpu_lock();
    for dev in plumb::devices().unwrap() {
        if !dev.holds_data() {
            println!(
                "skipped: {}: holds no data (its trace is checked below)",
                dev.id()
            );
            continue;
        }
        let id = dev.id().to_string();
        let mut t = Tensor::zeros([2, 4, 3], DType::F32, &dev).unwrap();
        let before = Arc::as_ptr(t.storage()) as *const u8;
        let src = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.], [2, 1, 3], &dev).unwrap();
        t.write_slice(1, 2, &src).unwrap();
        assert_eq!(
            Arc::as_ptr(t.storage()) as *const u8,
            before,
            "{id}: a new storage was made"
        );
        let v = t.to_vec::<f32>().unwrap();
        assert_eq!(&v[6..9], &[1., 2., 3.], "{id}");
        assert_eq!(&v[18..21], &[4., 5., 6.], "{id}");
        assert_eq!(v.iter().filter(|&&x| x != 0.0).count(), 6, "{id}");

        // a view shares the storage: the write copies, and the view keeps the old values
        let view = t.narrow(1, 2, 1).unwrap();
        let zeros = Tensor::zeros([2, 1, 3], DType::F32, &dev).unwrap();
        t.write_slice(1, 2, &zeros).unwrap();
        assert_ne!(Arc::as_ptr(t.storage()) as *const u8, before, "{id}");
        assert_eq!(
            view.to_vec::<f32>().unwrap(),
            vec![1., 2., 3., 4., 5., 6.],
            "{id}"
        );
        assert!(t.to_vec::<f32>().unwrap().iter().all(|&x| x == 0.0), "{id}");
        println!("{id}: in place, and copied when shared");
    }
}

#[test]
fn meta_device_traces_the_write_without_an_output() {
    let meta = plumb::Device::meta();
    let mut t = Tensor::zeros([1, 2, 8, 4], DType::F16, &meta).unwrap();
    let src = Tensor::zeros([1, 2, 3, 4], DType::F16, &meta).unwrap();
    meta.start_trace();
    t.write_slice(2, 5, &src).unwrap();
    let trace = meta.take_trace();
    assert_eq!(trace.len(), 1, "{trace:?}");
    assert_eq!(trace[0].op, "write_slice");
    assert_eq!(t.shape(), &[1, 2, 8, 4]);
}

#[test]
fn errors_name_the_op_and_shapes() {
    let dev = cpu();
    let mut t = Tensor::zeros([2, 4], DType::F32, &dev).unwrap();
    let wrong = Tensor::zeros([3, 1], DType::F32, &dev).unwrap();
    let e = t.write_slice(1, 0, &wrong).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("write_slice") && m.contains("[2, 4]") && m.contains("[3, 1]"),
        "{m}"
    );

    let half = Tensor::zeros([2, 1], DType::F16, &dev).unwrap();
    let e = t.write_slice(1, 0, &half).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("write_slice"), "{e}");

    let two = Tensor::zeros([2, 2], DType::F32, &dev).unwrap();
    let e = t.write_slice(1, 3, &two).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("write_slice") && m.contains('5') && m.contains('4'),
        "{m}"
    );
    // nothing was written by the failed calls
    assert!(t.to_vec::<f32>().unwrap().iter().all(|&x| x == 0.0));
}
