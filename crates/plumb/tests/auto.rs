//! `plumb::auto()` and the environment: PLUMB_DEVICE overrides, PLUMB_POLICY is applied or
//! refused, and a CPU-emulated GPU never wins. One test in its own binary, because it sets
//! environment variables.

use plumb::{DType, DeviceKind, Error, Policy};

#[test]
fn auto_device_and_environment() {
    std::env::remove_var("PLUMB_DEVICE");
    std::env::remove_var("PLUMB_POLICY");
    let all = plumb::devices().unwrap();
    assert_eq!(all[0].id(), "cpu");
    assert_eq!(all.last().unwrap().id(), "meta");
    let best = plumb::auto().unwrap();
    assert!(best.holds_data());
    assert!(
        !matches!(
            best.info().kind,
            DeviceKind::EmulatedGpu | DeviceKind::VirtualGpu
        ),
        "auto picked {} ({:?})",
        best.id(),
        best.info().kind
    );
    let real_gpu = all.iter().any(|d| {
        matches!(
            d.info().kind,
            DeviceKind::DiscreteGpu | DeviceKind::IntegratedGpu
        )
    });
    if !real_gpu {
        assert_eq!(
            best.id(),
            "cpu",
            "only emulated GPUs here, so the CPU must win"
        );
    }
    // every device but the CPU and meta falls back to the CPU
    for d in &all[1..all.len() - 1] {
        assert_eq!(
            d.fallback().map(|f| f.id().to_string()).as_deref(),
            Some("cpu")
        );
    }
    assert_eq!(plumb::device("auto").unwrap().id(), best.id());

    for d in &all {
        std::env::set_var("PLUMB_DEVICE", d.id());
        assert_eq!(plumb::auto().unwrap().id(), d.id());
    }
    std::env::set_var("PLUMB_DEVICE", "gpu:9");
    let e = plumb::auto().unwrap_err();
    assert!(matches!(e, Error::UnknownDevice { .. }), "{e}");
    std::env::remove_var("PLUMB_DEVICE");

    std::env::set_var("PLUMB_POLICY", "reckless");
    let e = plumb::devices().unwrap_err();
    assert!(e.to_string().contains("reckless"), "{e}");
    std::env::set_var("PLUMB_POLICY", "strict");
    let fresh = plumb::device_from_backend(all[0].backend().clone()).unwrap();
    assert_eq!(fresh.policy(), Policy::STRICT);
    std::env::remove_var("PLUMB_POLICY");

    // the recommendation is measured, memoized, and never a dtype the device lacks
    let cpu = plumb::device("cpu").unwrap();
    let r = plumb::recommendation(&cpu).unwrap();
    assert_eq!(plumb::recommendation(&cpu).unwrap(), r);
    assert!(
        matches!(r.dtype, DType::F32 | DType::F16 | DType::BF16),
        "{r:?}"
    );
    assert_eq!(
        cpu.supports(plumb::OpFamily::Matmul, r.dtype),
        plumb::Support::Native
    );
    assert!(!r.reason.is_empty());
}
