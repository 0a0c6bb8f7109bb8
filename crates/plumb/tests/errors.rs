//! Every `Error` variant reachable from the facade's public API, produced on purpose, with its
//! message checked for what went wrong. (`Format` and `Io` come from file loading, which lives
//! in plumb-nn and is tested there; `OutOfMemory` is listed at the end.)

mod common;

use plumb::{DType, Error, Policy, Support, Tensor};
use std::sync::Arc;

fn cpu() -> plumb::Device {
    plumb::device("cpu").unwrap()
}

fn msg(e: &Error) -> String {
    e.to_string()
}

#[test]
fn shape_mismatch_names_op_and_shapes() {
    let a = Tensor::zeros([2, 3], DType::F32, &cpu()).unwrap();
    let b = Tensor::zeros([4, 5], DType::F32, &cpu()).unwrap();
    let e = a.matmul(&b).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }));
    let m = msg(&e);
    assert!(
        m.contains("matmul") && m.contains("[2, 3]") && m.contains("[4, 5]"),
        "{m}"
    );
    let e = a.add(&b).unwrap_err();
    assert!(msg(&e).contains("do not broadcast"), "{e}");
}

#[test]
fn dtype_mismatch_names_both_dtypes() {
    let a = Tensor::zeros([2], DType::F32, &cpu()).unwrap();
    let b = Tensor::zeros([2], DType::BF16, &cpu()).unwrap();
    let e = a.mul(&b).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch { .. }));
    assert!(
        msg(&e).contains("mul") && msg(&e).contains("f32 vs bf16"),
        "{e}"
    );
    let e = a.to_vec::<f64>().unwrap_err();
    assert!(msg(&e).contains("to_vec"), "{e}");
}

#[test]
fn unsupported_dtype_names_op_dtype_and_device() {
    let i = Tensor::zeros([2], DType::I32, &cpu()).unwrap();
    let e = i.exp().unwrap_err();
    assert!(matches!(e, Error::UnsupportedDType { .. }));
    let m = msg(&e);
    assert!(
        m.contains("exp") && m.contains("i32") && m.contains("cpu"),
        "{m}"
    );
    let q = Tensor::from_f64(&[0.5; 32], DType::Q8_0, [1, 32], &cpu()).unwrap();
    let e = q.add(&q).unwrap_err();
    assert!(
        msg(&e).contains("q8_0") && msg(&e).contains("qmatmul"),
        "{e}"
    );
}

#[test]
fn quantized_rows_that_straddle_blocks_are_refused_with_the_shape() {
    // 96 values = 3 whole q8_0 blocks, but rows of 48 would cut the second block in two
    let e = Tensor::from_f64(&[0.25; 96], DType::Q8_0, [2, 48], &cpu()).unwrap_err();
    let m = msg(&e);
    assert!(m.contains("q8_0") && m.contains("[2, 48]"), "{m}");
    // the same rows reached through a reshape of whole blocks: refused by reshape or qmatmul
    let w = Tensor::from_f64(&[0.25; 96], DType::Q8_0, [3, 32], &cpu()).unwrap();
    let x = Tensor::from_f64(&[1.0; 48], DType::F32, [1, 48], &cpu()).unwrap();
    let e = w.reshape([2, 48]).and_then(|w| x.qmatmul(&w)).unwrap_err();
    let m = msg(&e);
    assert!(
        (m.contains("q8_0") || m.contains("quantized")) && m.contains("[2, 48]"),
        "{m}"
    );
}

#[test]
fn out_of_range_names_the_index_and_bound() {
    let a = Tensor::zeros([2, 3], DType::F32, &cpu()).unwrap();
    let e = a.sum(4, false).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }));
    assert!(msg(&e).contains("sum") && msg(&e).contains("dim 4"), "{e}");
    let e = a.narrow(1, 2, 2).unwrap_err();
    assert!(msg(&e).contains("narrow") && msg(&e).contains('4'), "{e}");
    // an id past the table is caught by the CPU backend
    let ids = Tensor::from_slice(&[0i64, 7], [2], &cpu()).unwrap();
    let e = a.index_select(&ids, 0).unwrap_err();
    let m = msg(&e);
    assert!(m.contains("index_select") && m.contains('7'), "{m}");
}

/// index_select and gather with an id past the table are errors on every device (GPUs
/// included: a shader would otherwise read zeros), naming the op, the id and the bound.
#[test]
fn out_of_range_ids_are_errors_on_every_device() {
    let _g = common::gpu_lock();
    for dev in plumb::devices().unwrap() {
        if !dev.holds_data() {
            println!("skipped: {}: holds no data", dev.id());
            continue;
        }
        let x =
            Tensor::from_f64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], DType::F32, [3, 2], &dev).unwrap();
        for dt in [DType::I32, DType::I64] {
            if !dev.supports(plumb::OpFamily::Index, dt).is_runnable() {
                println!(
                    "skipped: {} {dt} ids: {}",
                    dev.id(),
                    dev.supports(plumb::OpFamily::Index, dt)
                );
                continue;
            }
            let ids = Tensor::from_f64(&[0.0, 3.0], dt, [2], &dev).unwrap();
            let m = msg(&x.index_select(&ids, 0).unwrap_err());
            assert!(
                m.contains("index_select") && m.contains('3'),
                "{}: {m}",
                dev.id()
            );
            let neg = Tensor::from_f64(&[-1.0, 0.0], dt, [2], &dev).unwrap();
            assert!(
                x.index_select(&neg, 0).is_err(),
                "{}: negative id",
                dev.id()
            );
            let g = Tensor::from_f64(&[0.0, 1.0, 2.0, 0.0, 1.0, 5.0], dt, [3, 2], &dev).unwrap();
            let m = msg(&x.gather(&g, 0).unwrap_err());
            assert!(m.contains("gather") && m.contains('5'), "{}: {m}", dev.id());
            // in range still works
            let ok = Tensor::from_f64(&[2.0, 0.0], dt, [2], &dev).unwrap();
            let y = x.index_select(&ok, 0).unwrap().to_vec::<f32>().unwrap();
            assert_eq!(y, vec![5.0, 6.0, 1.0, 2.0], "{}", dev.id());
            // ids in range when uploaded, then written past the table in place (a device may
            // remember the range of what it uploaded: the write must not leave it stale)
            let mut w = Tensor::from_f64(&[0.0, 1.0], dt, [2], &dev).unwrap();
            let past = Tensor::from_f64(&[4.0], dt, [1], &dev).unwrap();
            w.write_slice(0, 1, &past).unwrap();
            let m = msg(&x.index_select(&w, 0).unwrap_err());
            assert!(
                m.contains("index_select") && m.contains('4'),
                "{}: ids written in place: {m}",
                dev.id()
            );
            // ids computed on the device
            if dev.supports(plumb::OpFamily::Elementwise, dt).is_runnable() {
                let twice = ok.add(&ok).unwrap(); // [4, 0]
                let m = msg(&x.index_select(&twice, 0).unwrap_err());
                assert!(
                    m.contains("index_select") && m.contains('4'),
                    "{}: ids computed on the device: {m}",
                    dev.id()
                );
            }
        }
    }
}

#[test]
fn invalid_argument_says_what_is_wrong() {
    let e = Tensor::arange(0.0, 1.0, 0.0, DType::F32, &cpu()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }));
    assert!(
        msg(&e).contains("arange") && msg(&e).contains("step 0"),
        "{e}"
    );
    let e = Tensor::cat(&[], 0).unwrap_err();
    assert!(
        msg(&e).contains("cat") && msg(&e).contains("no tensors"),
        "{e}"
    );
    let e = "fast".parse::<Policy>().unwrap_err();
    assert!(
        msg(&e).contains("fast") && msg(&e).contains("strict"),
        "{e}"
    );
}

#[test]
fn device_mismatch_names_both_devices() {
    let a = Tensor::zeros([2], DType::F32, &cpu()).unwrap();
    let b = Tensor::zeros([2], DType::F32, &plumb::device("meta").unwrap()).unwrap();
    let e = a.add(&b).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }));
    assert!(msg(&e).contains("cpu") && msg(&e).contains("meta"), "{e}");
}

#[test]
fn unknown_dtype_and_device_list_what_exists() {
    let e = "f8".parse::<DType>().unwrap_err();
    assert!(matches!(e, Error::UnknownDType { .. }));
    assert!(msg(&e).contains("'f8'") && msg(&e).contains("bf16"), "{e}");
    let has_cuda = plumb::device("cuda:0").is_ok();
    if has_cuda {
        println!("note: this machine has cuda:0, so only cuda:99 is checked as absent");
    }
    let absent_cuda = if has_cuda { "cuda:99" } else { "cuda:0" };
    for spec in ["gpu:99", absent_cuda, "tpu"] {
        let e = plumb::device(spec).unwrap_err();
        assert!(matches!(e, Error::UnknownDevice { .. }));
        let m = msg(&e);
        assert!(
            m.contains(spec) && m.contains("cpu") && m.contains("meta"),
            "{m}"
        );
    }
    // the list says why there is no (or no such) CUDA device
    let m = msg(&plumb::device(absent_cuda).unwrap_err());
    if !has_cuda {
        assert!(m.contains("cuda: "), "{m}");
    }
}

#[test]
fn policy_refused_names_policy_op_dtype_and_device() {
    let mut w = common::Wrapped::new(cpu().backend().clone(), "test:no-bf16");
    w.caps.set(
        plumb::OpFamily::Matmul,
        DType::BF16,
        Support::Emulated { via: DType::F32 },
    );
    let dev = plumb::device_from_backend(Arc::new(w)).unwrap();
    let dev = dev.with_policy(Policy::STRICT);
    let a = Tensor::ones([2, 2], DType::BF16, &dev).unwrap();
    let e = a.matmul(&a).unwrap_err();
    assert!(matches!(e, Error::PolicyRefused { .. }));
    let m = msg(&e);
    assert!(
        m.contains("strict")
            && m.contains("matmul")
            && m.contains("bf16")
            && m.contains("test:no-bf16"),
        "{m}"
    );
}

#[test]
fn backend_errors_name_device_and_op() {
    // the Backend trait is public; a malformed upload is refused by the backend, not a panic
    let e = cpu()
        .backend()
        .upload(DType::F32, 4, &[0u8; 3])
        .unwrap_err();
    let m = msg(&e);
    assert!(m.contains("upload") && m.contains("16"), "{m}");
    // the meta device traces ops but holds no values: reading one back is refused (it gave
    // zeros, which `plumb embed --device meta` printed as an embedding)
    let meta = plumb::device("meta").unwrap();
    let x = Tensor::ones([2, 3], DType::F32, &meta).unwrap();
    let y = x.exp().unwrap();
    let m = msg(&y.to_vec::<f32>().unwrap_err());
    assert!(
        m.contains("meta") && m.contains("read back") && m.contains("[2, 3]"),
        "{m}"
    );
}

#[test]
fn limit_exceeded_on_a_gpu_names_the_limit() {
    let _g = common::gpu_lock();
    let gpus: Vec<_> = plumb::devices()
        .unwrap()
        .into_iter()
        .filter(|d| d.id().starts_with("gpu:"))
        .collect();
    if gpus.is_empty() {
        println!("skipped: limit_exceeded: no GPU on this machine");
    }
    for g in gpus {
        let max = g.capabilities().limits.max_buffer_bytes;
        let n = (max / 4 + 1) as usize;
        let e = Tensor::zeros([n], DType::F32, &g).unwrap_err();
        assert!(matches!(e, Error::LimitExceeded { .. }), "{}: {e}", g.id());
        assert!(msg(&e).contains(g.id()) && msg(&e).contains("max_"), "{e}");
    }
}

// Error::OutOfMemory is produced in tests/oom.rs.
