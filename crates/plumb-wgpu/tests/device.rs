//! Discovery, capabilities, profiles, the limits path, buffer reuse and batching.
mod common;
use plumb_core::{Backend, DType, Device, DeviceKind, Error, OpFamily, Policy, Support, Tensor};
use std::sync::Arc;

#[test]
fn discovery_orders_and_describes_adapters() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let all = plumb_wgpu::discover(None).unwrap();
    if all.is_empty() {
        println!("skipped: no adapter");
        return;
    }
    let rank = |k: DeviceKind| match k {
        DeviceKind::DiscreteGpu => 0,
        DeviceKind::IntegratedGpu => 1,
        DeviceKind::VirtualGpu => 2,
        _ => 3,
    };
    for (i, b) in all.iter().enumerate() {
        let info = b.info();
        println!(
            "{} {} {:?} {} {} {:?}",
            info.id, info.name, info.kind, info.api, info.driver, info.features
        );
        assert_eq!(info.id, format!("gpu:{i}"));
        assert!(["Vulkan", "Metal", "Dx12", "Gl"].contains(&info.api.as_str()));
        let caps = b.capabilities();
        assert!(caps.limits.max_binding_bytes > 0 && caps.limits.max_buffer_bytes > 0);
        // capabilities follow the features
        let f16 = info.features.iter().any(|f| f == "SHADER_F16");
        assert_eq!(caps.get(OpFamily::Matmul, DType::F16).is_runnable(), f16);
        assert_eq!(
            caps.get(OpFamily::Matmul, DType::BF16),
            Support::Emulated { via: DType::F32 }
        );
        assert!(!caps.get(OpFamily::Matmul, DType::F64).is_runnable());
        let i64 = info.features.iter().any(|f| f == "SHADER_INT64");
        assert_eq!(
            caps.get(OpFamily::Elementwise, DType::I64).is_runnable(),
            i64
        );
        assert!(
            caps.get(OpFamily::Cast, DType::F16).is_runnable(),
            "f16 must always upcast"
        );
        if i > 0 {
            let prev = &all[i - 1].info();
            assert!(
                rank(prev.kind) <= rank(info.kind),
                "order {:?} then {:?}",
                prev.kind,
                info.kind
            );
            if prev.kind == info.kind && prev.name == info.name {
                assert!(
                    !(prev.api == "Gl" && info.api != "Gl"),
                    "GL before a native API"
                );
            }
        }
    }
}

#[test]
fn profiles_mask_features_and_unknown_names_are_errors() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let e = plumb_wgpu::discover(Some("apple-m9"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("apple-m9") && e.contains("apple-m1") && e.contains("apple-m3"),
        "{e}"
    );
    let Some(b) = plumb_wgpu::discover(Some("apple-m2"))
        .unwrap()
        .into_iter()
        .next()
    else {
        println!("skipped: no adapter");
        return;
    };
    let info = b.info();
    assert_eq!(info.profile.as_deref(), Some("apple-m2"));
    assert!(!info.features.iter().any(|f| f == "SHADER_F64"));
    let caps = b.capabilities();
    assert!(caps.limits.max_binding_bytes <= 256 << 20);
    assert_eq!(
        caps.get(OpFamily::Cast, DType::F64),
        Support::Emulated { via: DType::F32 }
    );
    let reason = caps.get(OpFamily::Elementwise, DType::F64).to_string();
    assert!(reason.contains("SHADER_F64"), "{reason}");
    // f64 under auto upcasts to f32 on the profile and still computes (casts are not f64
    // either there: upload/download are bit moves, the conversion goes through f32 ops)
    let d = Device::with_backend_policy(Arc::new(b), Policy::AUTO);
    let x = Tensor::from_f64(&[1.0, 4.0], DType::F64, [2], &d).unwrap();
    d.reset_report();
    let y = x.sqrt().unwrap();
    assert_eq!(y.dtype(), DType::F64);
    assert_eq!(y.to_f64_vec().unwrap(), vec![1.0, 2.0]);
    assert!(d.report().count("upcast") >= 1, "{}", d.report());
}

#[test]
fn f16_without_shader_f16_upcasts_under_auto_and_fails_under_strict() {
    for (label, d) in common::devices() {
        if d.supports(OpFamily::Elementwise, DType::F16).is_runnable() {
            continue;
        }
        let x = Tensor::from_f64(&[0.5, 1.0, 2.0], DType::F16, [3], &d).unwrap();
        d.reset_report();
        let y = x.exp().unwrap();
        assert_eq!(y.dtype(), DType::F16);
        let got = y.to_f64_vec().unwrap();
        assert!((got[2] - 2f64.exp()).abs() < 1e-2, "{label}: {got:?}");
        assert!(d.report().count("upcast") >= 1, "{label}: {}", d.report());
        let strict = d.with_policy(Policy::STRICT);
        let xs = Tensor::from_f64(&[0.5], DType::F16, [1], &strict).unwrap();
        let e = xs.exp().unwrap_err().to_string();
        assert!(e.contains("SHADER_F16"), "{label}: {e}");
        println!("{label}: f16 upcast under auto; strict says: {e}");
    }
}

#[test]
fn a_tensor_above_the_binding_limit_is_a_clear_error() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let Some(b) = plumb_wgpu::discover(Some("apple-m2"))
        .unwrap()
        .into_iter()
        .next()
    else {
        println!("skipped: no adapter");
        return;
    };
    let b = b.with_max_binding_bytes(1 << 20);
    assert_eq!(b.capabilities().limits.max_binding_bytes, 1 << 20);
    let d = Device::with_backend_policy(Arc::new(b), Policy::AUTO);
    let ok = Tensor::zeros([1 << 18], DType::F32, &d).unwrap(); // exactly 1 MiB
    assert_eq!(ok.sum_all().unwrap().to_scalar_f64().unwrap(), 0.0);
    let err = Tensor::zeros([(1 << 18) + 1], DType::F32, &d).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit_name: "max_storage_buffer_binding_size",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("max_storage_buffer_binding_size") && msg.contains("1048576"),
        "{msg}"
    );
    // an op whose output would exceed it fails the same way, without a wgpu panic
    let a = Tensor::ones([600, 300], DType::F32, &d).unwrap();
    let e = a
        .matmul(&Tensor::ones([300, 600], DType::F32, &d).unwrap())
        .unwrap_err();
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
    // the device still works afterwards
    assert_eq!(
        ok.add_scalar(1.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar_f64()
            .unwrap(),
        (1 << 18) as f64
    );
}

#[test]
fn buffers_are_reused_across_many_ops() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let Some(b) = plumb_wgpu::discover(None).unwrap().into_iter().next() else {
        println!("skipped: no adapter");
        return;
    };
    let b = Arc::new(b);
    let d = Device::with_backend_policy(b.clone(), Policy::AUTO);
    let mut x = Tensor::ones([1000], DType::F32, &d).unwrap();
    for _ in 0..10 {
        x = x.add_scalar(1.0).unwrap();
    }
    x.to_f64_vec().unwrap();
    let before = b.pool_buffers_created();
    for _ in 0..1000 {
        x = x.add_scalar(1.0).unwrap();
    }
    let v = x.to_f64_vec().unwrap();
    assert_eq!(v[999], 1011.0);
    let after = b.pool_buffers_created();
    assert!(
        after - before <= 4,
        "pool grew from {before} to {after} buffers over 1000 ops"
    );
    println!("pool: {before} -> {after} buffers over 1000 ops");
}

#[test]
fn many_queued_ops_give_correct_results_at_one_readback() {
    for (label, d) in common::devices() {
        // 300 dependent ops (several batches) and 50 independent results read at the end
        let mut x = Tensor::zeros([257], DType::F32, &d).unwrap();
        let mut keep = Vec::new();
        for i in 0..300 {
            x = x.add_scalar(1.0).unwrap();
            if i % 6 == 0 {
                keep.push((i + 1, x.mul_scalar(2.0).unwrap()));
            }
        }
        for (i, t) in keep {
            let v = t.to_f64_vec().unwrap();
            assert!(
                v.iter().all(|&e| e == 2.0 * i as f64),
                "{label}: step {i}: {:?}",
                &v[..3]
            );
        }
        d.backend().synchronize().unwrap();
    }
}

#[test]
fn storages_from_other_devices_are_errors_not_panics() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let Some(b) = plumb_wgpu::discover(None).unwrap().into_iter().next() else {
        println!("skipped: no adapter");
        return;
    };
    let meta = Device::meta();
    let t = Tensor::zeros([4], DType::F32, &meta).unwrap();
    let e = b
        .unary(plumb_core::UnaryOp::Exp, t.view())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not belong"), "{e}");
}

#[test]
fn scalars_empty_tensors_and_dispatches_split_over_y() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let Some(b) = plumb_wgpu::discover(None).unwrap().into_iter().next() else {
        println!("skipped: no adapter");
        return;
    };
    let d = Device::with_backend_policy(Arc::new(b), Policy::AUTO);
    let s = Tensor::scalar(2.0, DType::F32, &d).unwrap();
    let r = s.mul(&s).unwrap().exp().unwrap().to_scalar_f64().unwrap();
    assert!((r - 4f64.exp()).abs() < 1e-3, "{r}");
    let e = Tensor::zeros([0, 3], DType::F16, &d).unwrap();
    assert_eq!(e.add(&e).unwrap().to_f64_vec().unwrap(), Vec::<f64>::new());
    assert_eq!(e.sum(0, false).unwrap().to_f64_vec().unwrap(), vec![0.0; 3]);
    // more than 65535 workgroups of 256: the dispatch is split over y
    let n = 65535 * 256 + 1000;
    let x = Tensor::full(1.5, [n], DType::F32, &d).unwrap();
    let y = x.add_scalar(1.0).unwrap().to_vec::<f32>().unwrap();
    assert!(
        y.iter().all(|&v| v == 2.5),
        "first wrong at {:?}",
        y.iter().position(|&v| v != 2.5)
    );
}
