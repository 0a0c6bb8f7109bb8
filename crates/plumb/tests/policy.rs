//! Issue 4's policy checks: the doctor table's support levels follow each adapter's features
//! (lavapipe Vulkan, the apple-m2 profile, the GL adapter), each policy has its documented
//! outcome for an unsupported (op, dtype), and plans see it all before anything runs.

mod common;

use common::Wrapped;
use plumb::doctor::{self, Options};
use plumb::{DType, Device, Error, OpFamily, Plan, Policy, Support, Tensor};
use std::sync::Arc;

fn gpus() -> Vec<Device> {
    let mut v: Vec<Device> = plumb::devices()
        .unwrap()
        .into_iter()
        .filter(|d| d.id().starts_with("gpu:"))
        .collect();
    match plumb::devices_with_profile("apple-m2") {
        Ok(p) => v.extend(p.into_iter().take(1)),
        Err(e) => println!("skipped: apple-m2 profile: {e}"),
    }
    if v.is_empty() {
        println!("skipped: GPU policy checks: no GPU adapter on this machine");
    }
    v
}

fn label(d: &Device) -> String {
    match &d.info().profile {
        Some(p) => format!("{}[{p}]", d.id()),
        None => format!("{} ({})", d.id(), d.info().api),
    }
}

#[test]
fn table_support_follows_adapter_features() {
    let _g = common::gpu_lock();
    let opts = Options {
        quick: true,
        dtypes: Some(vec![DType::F16, DType::BF16, DType::I64, DType::F32]),
        families: Some(vec![OpFamily::Elementwise, OpFamily::Matmul]),
        policy: Some(Policy::STRICT),
        ..Default::default()
    };
    let mut saw_gl = false;
    for g in gpus() {
        let has = |f: &str| g.info().features.iter().any(|x| x == f);
        let rep =
            doctor::run_on(std::slice::from_ref(&g), vec![], &opts, &mut |_, _, _| {}).unwrap();
        let cell = |f: OpFamily, d: DType| {
            rep.devices[0]
                .cells
                .iter()
                .find(|c| c.family == f && c.dtype == d)
                .unwrap()
                .clone()
        };
        let l = label(&g);
        for f in [OpFamily::Elementwise, OpFamily::Matmul] {
            let c = cell(f, DType::F16);
            let want = if has("SHADER_F16") {
                "native"
            } else {
                "unsupported"
            };
            assert_eq!(c.support, want, "{l} {f} f16: {c:?}");
            // strict runs what is native and refuses the rest, before any kernel
            let status = if has("SHADER_F16") { "ok" } else { "refused" };
            assert_eq!(c.status, status, "{l} {f} f16: {c:?}");
            // WGSL has no bf16: stored as bf16, computed in f32 on every adapter
            assert_eq!(cell(f, DType::BF16).support, "emulated", "{l} {f} bf16");
            assert_eq!(cell(f, DType::F32).status, "ok", "{l} {f} f32");
        }
        let c = cell(OpFamily::Elementwise, DType::I64);
        let want = if has("SHADER_INT64") {
            "native"
        } else {
            "unsupported"
        };
        assert_eq!(c.support, want, "{l} elementwise i64: {c:?}");
        if g.info().api.eq_ignore_ascii_case("gl") {
            saw_gl = true;
            assert!(!has("SHADER_F16"), "{l}: the GL adapter reports f16");
        }
        if g.info().profile.as_deref() == Some("apple-m2") {
            // Metal through wgpu: f16 yes, f64 never
            assert!(
                has("SHADER_F16") && !has("SHADER_F64"),
                "{l}: {:?}",
                g.info().features
            );
        }
        println!("checked: {l}: features {:?}", g.info().features);
    }
    if !saw_gl {
        println!("skipped: GL adapter checks: no GL adapter on this machine");
    }
}

/// Devices with f16 matmul unsupported: every GPU without SHADER_F16 (the GL adapter), and a CPU
/// wrapper declaring the same (so the checks run on every machine, with a kernel log).
fn no_f16_devices() -> Vec<(Device, Option<Arc<Wrapped>>)> {
    let mut w = Wrapped::new(
        plumb::device("cpu").unwrap().backend().clone(),
        "test:no-f16",
    );
    for f in OpFamily::ALL {
        if f != OpFamily::Cast {
            w.caps
                .set(f, DType::F16, Support::unsupported("no SHADER_F16"));
        }
    }
    w.caps.set(
        OpFamily::Elementwise,
        DType::I64,
        Support::unsupported("no SHADER_INT64"),
    );
    let w = Arc::new(w);
    let mut v = vec![(plumb::device_from_backend(w.clone()).unwrap(), Some(w))];
    for g in gpus() {
        if !g.supports(OpFamily::Matmul, DType::F16).is_runnable() {
            v.push((g, None));
        }
    }
    v
}

fn mm_ref(a: &[f64], n: usize) -> Vec<f64> {
    (0..n * n)
        .map(|i| (0..n).map(|p| a[(i / n) * n + p] * a[p * n + i % n]).sum())
        .collect()
}

fn close(got: &[f64], want: &[f64], tol: f64) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= tol * w.abs().max(1.0))
}

#[test]
fn each_policy_has_its_documented_outcome() {
    let _g = common::gpu_lock();
    let n = 8;
    let a: Vec<f64> = (0..n * n)
        .map(|i| half::f16::from_f64((i as f64 * 0.37).sin()).to_f64())
        .collect();
    let want = mm_ref(&a, n);
    for (dev, log) in no_f16_devices() {
        let l = label(&dev);
        // strict: an error before any kernel runs
        let d = dev.with_policy(Policy::STRICT);
        let x = Tensor::from_f64(&a, DType::F16, [n, n], &d).unwrap();
        if let Some(w) = &log {
            w.clear();
        }
        let e = x.matmul(&x).unwrap_err();
        assert!(matches!(e, Error::PolicyRefused { .. }), "{l}: {e}");
        if let Some(w) = &log {
            assert!(
                w.kernels().is_empty(),
                "{l}: kernels ran: {:?}",
                w.kernels()
            );
        }

        // auto: upcast on the same device, counted
        let d = dev.with_policy(Policy::AUTO);
        let x = Tensor::from_f64(&a, DType::F16, [n, n], &d).unwrap();
        let y = x.matmul(&x).unwrap();
        assert_eq!(y.dtype(), DType::F16);
        assert!(y.device().same_device(&dev), "{l}: left the device");
        assert!(
            close(&y.to_f64_vec().unwrap(), &want, 2e-3),
            "{l}: auto result"
        );
        assert!(d.report().count("upcast") >= 1, "{l}: {}", d.report());
        if let Some(w) = &log {
            assert!(
                w.kernels().contains(&("matmul".into(), DType::F32)),
                "{l}: {:?}",
                w.kernels()
            );
        }

        // +cpu-fallback: an op with no f32 way out (i64 elementwise) runs on the CPU, counted
        let i: Vec<i64> = (0..6).collect();
        let d = dev.with_policy(Policy::AUTO);
        let t = Tensor::from_slice(&i, [6], &d).unwrap();
        if !d.supports(OpFamily::Elementwise, DType::I64).is_runnable() {
            let e = t.add(&t).unwrap_err();
            assert!(
                matches!(e, Error::PolicyRefused { .. }),
                "{l}: auto i64: {e}"
            );
            let d = dev.with_policy(Policy::AUTO.with_cpu_fallback(true));
            let t = Tensor::from_slice(&i, [6], &d).unwrap();
            if let Some(w) = &log {
                w.clear();
            }
            let s = t.add(&t).unwrap();
            assert!(s.device().same_device(&dev), "{l}: result not brought back");
            assert_eq!(s.to_vec::<i64>().unwrap(), vec![0, 2, 4, 6, 8, 10]);
            assert_eq!(d.report().count("cpu"), 1, "{l}: {}", d.report());
            if let Some(w) = &log {
                assert!(
                    !w.kernels().iter().any(|k| k.0 == "add"),
                    "{l}: ran on the device"
                );
            }
            println!("checked: {l}: strict error, auto upcast, cpu fallback counted");
        }
    }
}

#[test]
fn safe_computes_in_f32_even_where_f16_is_native() {
    let _g = common::gpu_lock();
    let w = Arc::new(Wrapped::new(
        plumb::device("cpu").unwrap().backend().clone(),
        "test:f16",
    ));
    let mut devs: Vec<(Device, Option<Arc<Wrapped>>)> =
        vec![(plumb::device_from_backend(w.clone()).unwrap(), Some(w))];
    for g in gpus() {
        if g.supports(OpFamily::Matmul, DType::F16) == Support::Native {
            devs.push((g, None));
        }
    }
    let a: Vec<f64> = (0..16).map(|i| (i as f64 * 0.1) - 0.8).collect();
    for (dev, log) in devs {
        let d = dev.with_policy(Policy::SAFE);
        let x = Tensor::from_f64(&a, DType::F16, [4, 4], &d).unwrap();
        let y = x.matmul(&x).unwrap();
        assert_eq!(y.dtype(), DType::F16);
        let r = d.report();
        assert_eq!(r.count("upcast"), 1, "{}: {r}", label(&dev));
        if let Some(w) = log {
            assert!(
                w.kernels().contains(&("matmul".into(), DType::F32)),
                "{:?}",
                w.kernels()
            );
            assert!(
                !w.kernels().contains(&("matmul".into(), DType::F16)),
                "{:?}",
                w.kernels()
            );
        }
    }
}

#[test]
fn plans_see_every_decision_before_running() {
    let _g = common::gpu_lock();
    // trace a small f16 block on the meta device
    let meta = plumb::device("meta").unwrap();
    let x = Tensor::zeros([2, 16], DType::F16, &meta).unwrap();
    let w = Tensor::zeros([16, 16], DType::F16, &meta).unwrap();
    let g = Tensor::ones([16], DType::F16, &meta).unwrap();
    let _ = x
        .matmul(&w)
        .unwrap()
        .rms_norm(Some(&g), 1e-6)
        .unwrap()
        .softmax(-1)
        .unwrap();
    let trace = meta.take_trace();
    assert_eq!(trace.len(), 3);
    for (dev, _) in no_f16_devices() {
        let l = label(&dev);
        let strict = Plan::build(&trace, &dev, Policy::STRICT);
        assert!(
            !strict.ok && strict.verdict.starts_with("error: 3 of 3 ops"),
            "{l}: {strict}"
        );
        assert!(strict.check().is_err());
        let auto = Plan::build(&trace, &dev, Policy::AUTO);
        assert!(auto.ok, "{l}: {auto}");
        assert_eq!(auto.count("upcast"), 3, "{l}: {auto}");
        // the matmul's two f16 inputs and the norm's two are converted to f32
        assert!(auto
            .conversions
            .iter()
            .all(|c| c.from == DType::F16 && c.to == DType::F32));
        assert_eq!(
            auto.conversions.iter().map(|c| c.count).sum::<u64>(),
            5,
            "{l}: {auto}"
        );
        let text = auto.to_string();
        assert!(
            text.contains("upcast to f32") && text.contains("verdict: ok"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&auto.to_json()).unwrap();
        assert_eq!(json["counts"]["upcast"], 3);
        // a resident size beyond the device's memory turns the verdict into an error
        if let Some(mem) = dev.capabilities().limits.memory_bytes {
            let big = auto.clone().with_resident(mem + 1);
            assert!(
                !big.ok && big.verdict.contains("needs about"),
                "{}",
                big.verdict
            );
        }
    }
}
