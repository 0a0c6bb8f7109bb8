//! The doctor: its JSON against the documented schema, a deliberately wrong kernel flagged as
//! inaccurate, the no-GPU message, and the support/decision columns under each policy.

mod common;

use common::Wrapped;
use plumb::doctor::{self, Options};
use plumb::{DType, OpFamily, Policy, Support};
use std::sync::Arc;

fn cpu_backend() -> Arc<dyn plumb::Backend> {
    plumb::device("cpu").unwrap().backend().clone()
}

fn opts(dtypes: &[DType], families: &[OpFamily], policy: Option<Policy>) -> Options {
    Options {
        quick: true,
        device: None,
        policy,
        dtypes: Some(dtypes.to_vec()),
        families: Some(families.to_vec()),
    }
}

fn cell(r: &doctor::DoctorReport, f: OpFamily, d: DType) -> &doctor::Cell {
    r.devices[0]
        .cells
        .iter()
        .find(|c| c.family == f && c.dtype == d)
        .unwrap()
}

#[test]
fn json_follows_the_documented_schema() {
    let _g = common::gpu_lock();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/doctor.schema.json")).unwrap();
    let mut seen = 0;
    let rep = doctor::run(
        &Options {
            quick: true,
            ..Default::default()
        },
        &mut |_, done, total| {
            assert!(done <= total);
            seen += 1;
        },
    )
    .unwrap();
    assert!(seen > 0, "progress was never reported");
    let doc: serde_json::Value = serde_json::from_str(&rep.to_json()).unwrap();
    let errs = common::schema::validate(&schema, &doc);
    assert!(errs.is_empty(), "schema violations:\n{}", errs.join("\n"));
    // every column × row of every data device is present, and the validator does reject
    let cpu = &rep.devices[0];
    assert_eq!(cpu.id, "cpu");
    assert_eq!(cpu.cells.len(), doctor::COLUMNS.len() * doctor::ROWS.len());
    let mut broken = doc.clone();
    broken["devices"][0]["cells"][0]["status"] = "fine".into();
    broken["devices"][0]["kind"] = 3.into();
    assert_eq!(common::schema::validate(&schema, &broken).len(), 2);
}

#[test]
fn a_wrong_f16_add_is_flagged_inaccurate() {
    let fams = [OpFamily::Elementwise];
    let dts = [DType::F16, DType::F32];
    let mut bad = Wrapped::new(cpu_backend(), "test:wrong-f16-add");
    bad.f16_add_offset = Some(1e-2);
    let bad = plumb::device_from_backend(Arc::new(bad)).unwrap();
    let r = doctor::run_on(&[bad], vec![], &opts(&dts, &fams, None), &mut |_, _, _| {}).unwrap();
    let c = cell(&r, OpFamily::Elementwise, DType::F16);
    assert_eq!(c.support, "native", "{c:?}");
    assert_eq!(c.status, "inaccurate", "{c:?}");
    assert!(c.max_rel_error.unwrap() > DType::F16.tolerance(), "{c:?}");
    assert_eq!(cell(&r, OpFamily::Elementwise, DType::F32).status, "ok");
    let text = doctor::render_text(&r, false);
    assert!(text.contains("elementwise f16: inaccurate"), "{text}");
    // a device with this bug must not be recommended for f16
    assert_ne!(r.recommendation.as_ref().map(|x| x.dtype), Some(DType::F16));

    // the same wrapper without the bug is fine: the flag comes from the measurement
    let good = Wrapped::new(cpu_backend(), "test:honest");
    let good = plumb::device_from_backend(Arc::new(good)).unwrap();
    let r = doctor::run_on(&[good], vec![], &opts(&dts, &fams, None), &mut |_, _, _| {}).unwrap();
    assert_eq!(cell(&r, OpFamily::Elementwise, DType::F16).status, "ok");
}

#[test]
fn without_a_gpu_the_doctor_says_so_and_why() {
    let _g = common::gpu_lock();
    let rep = doctor::run(
        &Options {
            quick: true,
            dtypes: Some(vec![DType::F32]),
            families: Some(vec![OpFamily::Elementwise]),
            ..Default::default()
        },
        &mut |_, _, _| {},
    )
    .unwrap();
    let text = doctor::render_text(&rep, false);
    // any GPU counts: wgpu adapters and CUDA devices alike
    let gpus = plumb::devices()
        .unwrap()
        .iter()
        .filter(|d| d.holds_data() && d.info().kind != plumb::DeviceKind::Cpu)
        .count();
    if gpus == 0 {
        assert!(!rep.gpu_found);
        assert!(text.contains("no GPU: gpu:"), "{text}");
        assert!(
            rep.notes.iter().any(|n| n.starts_with("gpu:")),
            "{:?}",
            rep.notes
        );
    } else {
        assert!(rep.gpu_found);
        assert!(!text.contains("no GPU"), "{text}");
    }
    // a CUDA device is in the table, or a note says why there is none
    assert!(text.contains("cuda:"), "{text}");
    assert!(text.contains("recommended: "), "{text}");
}

#[test]
fn a_machine_with_only_a_cpu_is_told_there_is_no_gpu() {
    // what discovery reports when wgpu finds no adapter, rendered for a CPU-only device list
    let notes = vec![
        "gpu: no GPU adapters found by wgpu (Vulkan, Metal, DX12, GL)".to_string(),
        "cuda: no NVIDIA driver library (libcuda.so) on this machine".to_string(),
    ];
    let o = opts(&[DType::F32], &[OpFamily::Matmul], None);
    let r = doctor::run_on(
        &[plumb::device("cpu").unwrap()],
        notes,
        &o,
        &mut |_, _, _| {},
    )
    .unwrap();
    assert!(!r.gpu_found);
    let text = doctor::render_text(&r, false);
    assert!(
        text.contains("no GPU: gpu: no GPU adapters found by wgpu"),
        "{text}"
    );
    assert!(
        text.contains("recommended: cpu, f32 for inference"),
        "{text}"
    );
}

/// A CPU wrapper declaring no f16 compute (like a GPU without SHADER_F16: f16 is only stored,
/// and converted to and from f32 by unpacking the bits) and no i64 elementwise.
fn no_f16_device() -> plumb::Device {
    let mut w = Wrapped::new(cpu_backend(), "test:no-f16");
    for f in OpFamily::ALL {
        w.caps.set(
            f,
            DType::F16,
            Support::unsupported("no SHADER_F16 on this adapter"),
        );
    }
    let emulated = Support::Emulated { via: DType::F32 };
    w.caps.set(OpFamily::Cast, DType::F16, emulated);
    w.caps.set(
        OpFamily::Elementwise,
        DType::I64,
        Support::unsupported("no SHADER_INT64 on this adapter"),
    );
    plumb::device_from_backend(Arc::new(w)).unwrap()
}

#[test]
fn the_table_shows_declared_support_and_the_policy_decision() {
    let dev = no_f16_device();
    let fams = [OpFamily::Elementwise, OpFamily::Matmul];
    let dts = [DType::F16, DType::I64, DType::F32];
    let run = |p: Policy| {
        doctor::run_on(
            std::slice::from_ref(&dev),
            vec![],
            &opts(&dts, &fams, Some(p)),
            &mut |_, _, _| {},
        )
        .unwrap()
    };
    let auto = run(Policy::AUTO);
    let c = cell(&auto, OpFamily::Matmul, DType::F16);
    assert_eq!(
        (c.support.as_str(), c.decision.as_str()),
        ("unsupported", "upcast")
    );
    assert_eq!(c.status, "ok", "{c:?}");
    assert!(c.note.contains("upcast to f32"), "{c:?}");
    let c = cell(&auto, OpFamily::Elementwise, DType::I64);
    assert_eq!(
        (c.decision.as_str(), c.status.as_str()),
        ("error", "refused")
    );

    let strict = run(Policy::STRICT);
    let c = cell(&strict, OpFamily::Matmul, DType::F16);
    assert_eq!(
        (c.decision.as_str(), c.status.as_str()),
        ("error", "refused")
    );
    assert!(c.decision_detail.contains("SHADER_F16"), "{c:?}");

    let fb = run(Policy::AUTO.with_cpu_fallback(true));
    let c = cell(&fb, OpFamily::Elementwise, DType::I64);
    assert_eq!(
        (c.decision.as_str(), c.status.as_str()),
        ("cpu-fallback", "ok")
    );
    assert!(c.note.contains("cpu fallback"), "{c:?}");
    // f16 is not recommended where it is not native
    assert_eq!(auto.recommendation.unwrap().dtype, DType::F32);
}
