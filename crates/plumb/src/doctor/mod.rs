//! The measured capability report behind `plumb doctor`, and the recommended device and dtype.
//!
//! For every device (or one), for each dtype column × op-family row, the doctor records the
//! support the device declares, the decision its policy takes, runs small probe inputs through
//! the real Tensor API on that device and compares with an f64 oracle (see [`probes`] for the
//! error metric and per-family tolerances). A cell whose measured error exceeds its tolerance is
//! `inaccurate` even when a kernel exists. Matmul rows also measure GFLOP/s, elementwise rows
//! GB/s, qmatmul rows GFLOP/s.
//!
//! The recommendation: among the probed devices, the one [`crate::auto`] would rank first whose
//! f32 inference families (elementwise, reduce, softmax, norm, matmul, index) are native and
//! accurate; on it, f16 or bf16 when that half is native and accurate for every one of those
//! families *and* its matmul measured at least [`HALF_MARGIN`] times as fast as f32's, the
//! dtypes' matmuls measured taking turns ([`matmul_in_turns`]); else f32, with the reason.
//!
//! The JSON form ([`DoctorReport`], `plumb doctor --json`) follows `docs/doctor.schema.json`
//! (schema version [`SCHEMA_VERSION`]).

mod probes;
mod render;

use crate::discover;
use plumb_core::{DType, Decision, Device, DeviceKind, OpFamily, Policy, Result, Support};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use render::render_text;

/// Version of the JSON schema in `docs/doctor.schema.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// The dtype columns of the table.
pub const COLUMNS: [DType; 8] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::I32,
    DType::I64,
    DType::F64,
    DType::Q8_0,
    DType::Q4_1,
];

/// The op-family rows of the table.
pub const ROWS: [OpFamily; 8] = [
    OpFamily::Elementwise,
    OpFamily::Reduce,
    OpFamily::Softmax,
    OpFamily::Norm,
    OpFamily::Matmul,
    OpFamily::Index,
    OpFamily::Cast,
    OpFamily::QMatmul,
];

/// The families a transformer's forward pass needs; a dtype is recommended for inference only
/// when all of them are native and accurate.
const INFERENCE_ROWS: [OpFamily; 6] = [
    OpFamily::Elementwise,
    OpFamily::Reduce,
    OpFamily::Softmax,
    OpFamily::Norm,
    OpFamily::Matmul,
    OpFamily::Index,
];

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// small throughput shapes and short timing budgets (seconds in all)
    pub quick: bool,
    /// only this device (`cpu`, `gpu:0`, ...)
    pub device: Option<String>,
    /// the policy to run the probes under (default: the device's, from `PLUMB_POLICY`)
    pub policy: Option<Policy>,
    /// only these dtype columns (default: all of [`COLUMNS`])
    pub dtypes: Option<Vec<DType>>,
    /// only these rows (default: all of [`ROWS`])
    pub families: Option<Vec<OpFamily>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub value: f64,
    /// `GFLOP/s` or `GB/s`
    pub unit: String,
    pub shape: String,
}

/// One table cell: (op family, dtype) on one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub family: OpFamily,
    pub dtype: DType,
    /// declared support: `native`, `emulated`, `unsupported`, or `n/a` (not meaningful)
    pub support: String,
    pub support_detail: String,
    /// the policy's decision: `native`, `emulated`, `upcast`, `cpu-fallback`, `error`, or `n/a`
    pub decision: String,
    pub decision_detail: String,
    /// `ok`, `inaccurate`, `failed` (the probe returned an error), `refused` (the policy refused
    /// it before any kernel ran), or `n/a`
    pub status: String,
    /// measured worst normalized error against the f64 oracle (`null` when not measured or not
    /// finite)
    pub max_rel_error: Option<f64>,
    /// the error bound this cell is held to
    pub tolerance: f64,
    pub throughput: Option<Throughput>,
    /// what the run report recorded while the probe ran (upcasts, fallbacks), or the error
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub id: String,
    pub name: String,
    pub kind: DeviceKind,
    pub api: String,
    pub driver: String,
    pub features: Vec<String>,
    pub profile: Option<String>,
    pub memory_bytes: Option<u64>,
    pub max_buffer_bytes: u64,
    pub policy: String,
    /// why this device was not probed (the meta device holds no data)
    pub skipped: Option<String>,
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub device: String,
    pub dtype: DType,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoctorReport {
    pub schema_version: u32,
    pub plumb_version: String,
    /// `quick` or `full`
    pub mode: String,
    pub gpu_found: bool,
    /// why a kind of device is missing (no GPU adapters, no CUDA backend)
    pub notes: Vec<String>,
    pub devices: Vec<DeviceReport>,
    pub recommendation: Option<Recommendation>,
}

impl DoctorReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Progress callback: (what is being probed, cells done, cells in all).
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Probe the devices discovery finds (or `opts.device`).
pub fn run(opts: &Options, progress: Progress) -> Result<DoctorReport> {
    let devices = match &opts.device {
        Some(spec) => vec![discover::device(spec)?],
        None => discover::devices()?,
    };
    let notes = discover::discovery_notes()?;
    run_on(&devices, notes, opts, progress)
}

/// Probe exactly `devices` (any backend, including ones built outside discovery).
pub fn run_on(
    devices: &[Device],
    notes: Vec<String>,
    opts: &Options,
    progress: Progress,
) -> Result<DoctorReport> {
    let dtypes = opts.dtypes.clone().unwrap_or(COLUMNS.to_vec());
    let families = opts.families.clone().unwrap_or(ROWS.to_vec());
    let total = devices.iter().filter(|d| d.holds_data()).count() * dtypes.len() * families.len();
    let mut done = 0;
    let mut reports = Vec::new();
    for dev in devices {
        let policy = opts.policy.unwrap_or_else(|| dev.policy());
        let dev = dev.with_policy(policy);
        let info = dev.info().clone();
        let caps = dev.capabilities();
        let mut rep = DeviceReport {
            id: info.id.clone(),
            name: info.name.clone(),
            kind: info.kind,
            api: info.api.clone(),
            driver: info.driver.clone(),
            features: info.features.clone(),
            profile: info.profile.clone(),
            memory_bytes: caps.limits.memory_bytes,
            max_buffer_bytes: caps.limits.max_buffer_bytes,
            policy: policy.to_string(),
            skipped: None,
            cells: Vec::new(),
        };
        if !dev.holds_data() {
            rep.skipped = Some("holds no data (shapes and dtypes only)".into());
            reports.push(rep);
            continue;
        }
        for &family in &families {
            for &dtype in &dtypes {
                progress(&format!("{} {family} {dtype}", info.id), done, total);
                rep.cells.push(cell(&dev, family, dtype, opts.quick));
                done += 1;
            }
        }
        matmul_in_turns(&dev, &mut rep, opts.quick);
        reports.push(rep);
    }
    progress("done", done, total);
    let gpu_found = devices
        .iter()
        .any(|d| !matches!(d.info().kind, DeviceKind::Cpu | DeviceKind::Meta));
    let mut recommendation = recommend(devices, &reports);
    if let (Some(r), true) = (recommendation.as_mut(), opts.quick) {
        r.reason.push_str(
            " (quick mode: throughput from small shapes; `plumb doctor` measures larger ones)",
        );
    }
    Ok(DoctorReport {
        schema_version: SCHEMA_VERSION,
        plumb_version: env!("CARGO_PKG_VERSION").to_string(),
        mode: if opts.quick { "quick" } else { "full" }.into(),
        gpu_found,
        notes,
        devices: reports,
        recommendation,
    })
}

fn throughput_size(kind: DeviceKind, family: OpFamily, quick: bool) -> usize {
    let gpu_like = !matches!(kind, DeviceKind::Cpu);
    match (family, quick, gpu_like) {
        (OpFamily::Matmul, true, true) => 128,
        (OpFamily::Matmul, true, false) => 256,
        (OpFamily::Matmul, false, true) => 512,
        (OpFamily::Matmul, false, false) => 1024,
        (OpFamily::QMatmul, true, _) => 256,
        (OpFamily::QMatmul, false, _) => 2048,
        (_, true, _) => 256,
        (_, false, _) => 2048,
    }
}

fn cell(dev: &Device, family: OpFamily, dtype: DType, quick: bool) -> Cell {
    let tol = probes::tolerance(family, dtype);
    let mut c = Cell {
        family,
        dtype,
        support: "n/a".into(),
        support_detail: String::new(),
        decision: "n/a".into(),
        decision_detail: String::new(),
        status: "n/a".into(),
        max_rel_error: None,
        tolerance: tol,
        throughput: None,
        note: String::new(),
    };
    if let Err(why) = probes::applicable(family, dtype) {
        c.note = why.into();
        return c;
    }
    let support = dev.supports(family, dtype);
    let f32_native = dev.supports(family, DType::F32) == Support::Native;
    let cast = dev.supports(OpFamily::Cast, dtype);
    let decision = dev
        .policy()
        .decide_op(family, dtype, &support, f32_native, &cast);
    c.support = support.short().into();
    c.support_detail = support.to_string();
    c.decision = decision.short().into();
    c.decision_detail = decision.to_string();
    if matches!(decision, Decision::Refuse { .. }) {
        // the reason is in decision_detail
        c.status = "refused".into();
        return c;
    }
    dev.reset_report();
    match probes::probe(dev, family, dtype) {
        Ok(m) => {
            c.max_rel_error = m.err.is_finite().then_some(m.err);
            c.status = if m.err <= tol { "ok" } else { "inaccurate" }.into();
            if !m.err.is_finite() {
                c.note = "non-finite or wrong-shaped output where the oracle is finite".into();
            }
        }
        Err(e) => {
            c.status = "failed".into();
            c.note = e.to_string();
            return c;
        }
    }
    let report = dev.report();
    if !report.decisions.is_empty() {
        let taken: Vec<String> = report
            .decisions
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect();
        c.note = taken.join("; ");
    }
    let budget = Duration::from_millis(if quick { 20 } else { 250 });
    let n = throughput_size(dev.info().kind, family, quick);
    match probes::throughput(dev, family, dtype, n, budget) {
        Ok(Some(r)) => {
            c.throughput = Some(Throughput {
                value: r.value,
                unit: r.unit.into(),
                shape: r.shape,
            })
        }
        Ok(None) => {}
        Err(e) => {
            if c.note.is_empty() {
                c.note = format!("throughput not measured: {e}");
            }
        }
    }
    c
}

/// How much faster than f32's a half's matmul must measure for the half to be recommended:
/// margin for a shared machine's noise (GPUs with half-precision units run 2–10× faster).
const HALF_MARGIN: f64 = 1.05;

/// Rounds of [`matmul_in_turns`].
const TURNS: usize = 5;

/// Measure the matmul speed of f32, f16 and bf16 (those that have one) again, taking turns
/// ([`TURNS`] rounds, each dtype's best kept), and put those figures in the cells. The dtype
/// recommendation compares them, and each cell's first figure came from its own stretch of
/// time: on a shared machine one dtype could land in a slow stretch and another in a fast one.
/// (`plumb doctor --device cpu` on the 2-core build machine: one run ranked bf16's matmul at
/// 1024 above f32's, 351 against 299 GFLOP/s, and recommended bf16, though bf16 goes through
/// widened f32 copies there; the two runs after it gave bf16 288 and 246 against f32 306 and
/// 296.)
fn matmul_in_turns(dev: &Device, rep: &mut DeviceReport, quick: bool) {
    let dtypes: Vec<DType> = rep
        .cells
        .iter()
        .filter(|c| c.family == OpFamily::Matmul && c.throughput.is_some())
        .filter(|c| matches!(c.dtype, DType::F32 | DType::F16 | DType::BF16))
        .map(|c| c.dtype)
        .collect();
    if dtypes.len() < 2 {
        return;
    }
    let n = throughput_size(dev.info().kind, OpFamily::Matmul, quick);
    let budget = Duration::from_millis(if quick { 10 } else { 60 });
    let mut best = vec![0f64; dtypes.len()];
    for _ in 0..TURNS {
        for (b, &dt) in best.iter_mut().zip(&dtypes) {
            if let Ok(Some(r)) = probes::throughput(dev, OpFamily::Matmul, dt, n, budget) {
                *b = b.max(r.value);
            }
        }
    }
    for (&b, &dt) in best.iter().zip(&dtypes) {
        let cell = rep
            .cells
            .iter_mut()
            .find(|c| c.family == OpFamily::Matmul && c.dtype == dt);
        if let Some(t) = cell.and_then(|c| c.throughput.as_mut()).filter(|_| b > 0.0) {
            t.value = b;
        }
    }
}

fn find(rep: &DeviceReport, family: OpFamily, dtype: DType) -> Option<&Cell> {
    rep.cells
        .iter()
        .find(|c| c.family == family && c.dtype == dtype)
}

fn matmul_rate(rep: &DeviceReport, dtype: DType) -> Option<f64> {
    find(rep, OpFamily::Matmul, dtype)
        .and_then(|c| c.throughput.as_ref())
        .map(|t| t.value)
}

/// Why `dtype` is not good for inference on this device, or `None` when it is: every inference
/// family the report has rows for must be measured in `dtype`, native and accurate.
fn unfit(rep: &DeviceReport, dtype: DType) -> Option<String> {
    let rows: Vec<OpFamily> = INFERENCE_ROWS
        .into_iter()
        .filter(|f| rep.cells.iter().any(|c| c.family == *f))
        .collect();
    if rows.is_empty() {
        return Some("no inference op family was probed".into());
    }
    for f in rows {
        let Some(c) = find(rep, f, dtype) else {
            return Some(format!("{f} in {dtype} was not measured"));
        };
        if c.support != "native" {
            return Some(format!("{f} in {dtype} is {}", c.support_detail));
        }
        if c.status != "ok" {
            let err = c
                .max_rel_error
                .map(|e| format!(" (error {e:.1e} > {:.0e})", c.tolerance))
                .unwrap_or_default();
            return Some(format!("{f} in {dtype} is {}{err}", c.status));
        }
    }
    None
}

/// The dtype to run inference in on one probed device, with the reason; `None` when not even f32
/// is native and accurate there.
fn recommend_dtype(rep: &DeviceReport) -> Option<Recommendation> {
    if unfit(rep, DType::F32).is_some() {
        return None;
    }
    let f32_rate = matmul_rate(rep, DType::F32);
    let mut best: Option<(DType, f64)> = None;
    let mut notes = Vec::new();
    for half in [DType::F16, DType::BF16] {
        if let Some(why) = unfit(rep, half) {
            notes.push(why);
            continue;
        }
        let rate = matmul_rate(rep, half).unwrap_or(0.0);
        // measured: a half must also be faster than f32 in matmul here, by more than a shared
        // machine's noise (a CPU without half-precision arithmetic converts every element and
        // loses more than it saves)
        if let Some(fr) = f32_rate {
            if rate < fr * HALF_MARGIN {
                notes.push(format!(
                    "{half} is native and accurate but its matmul runs at {rate:.1} GFLOP/s vs {fr:.1} in f32"
                ));
                continue;
            }
        }
        if best.is_none_or(|(_, r)| rate > r) {
            best = Some((half, rate));
        }
    }
    Some(match best {
        Some((dt, rate)) => Recommendation {
            device: rep.id.clone(),
            dtype: dt,
            reason: format!(
                "{dt} is native and measured accurate for every inference op family, at half the memory of f32; matmul {rate:.1} GFLOP/s vs {:.1} in f32",
                f32_rate.unwrap_or(0.0)
            ),
        },
        None => Recommendation {
            device: rep.id.clone(),
            dtype: DType::F32,
            reason: format!(
                "f32 is native and measured accurate; {}",
                if notes.is_empty() {
                    "no half precision was measured".into()
                } else {
                    notes.join("; ")
                }
            ),
        },
    })
}

/// The device `auto()` would rank first among those probed whose f32 works, with its dtype.
fn recommend(devices: &[Device], reports: &[DeviceReport]) -> Option<Recommendation> {
    let mut candidates: Vec<Device> = devices.iter().filter(|d| d.holds_data()).cloned().collect();
    while let Some(best) = discover::pick_best(&candidates) {
        if let Some(rep) = reports.iter().find(|r| r.id == best.id()) {
            if let Some(mut r) = recommend_dtype(rep) {
                r.reason = format!(
                    "{} ({:?}) ranks first among the devices that work; {}",
                    rep.id, rep.kind, r.reason
                );
                return Some(r);
            }
        }
        candidates.retain(|d| !d.same_device(&best));
    }
    None
}

static MEMO: OnceLock<Mutex<HashMap<String, Recommendation>>> = OnceLock::new();

/// The dtype to run inference in on `device`, from its capabilities plus a quick measurement
/// (f32, f16 and bf16 on the inference op families; memoized per device per process).
pub fn recommendation(device: &Device) -> Result<Recommendation> {
    let key = format!("{}|{:?}", device.id(), device.info().profile);
    let memo = MEMO.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(r) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(r.clone());
    }
    let opts = Options {
        quick: true,
        device: None,
        policy: Some(Policy::STRICT),
        dtypes: Some(vec![DType::F32, DType::F16, DType::BF16]),
        families: Some(INFERENCE_ROWS.to_vec()),
    };
    let rep = run_on(
        std::slice::from_ref(device),
        Vec::new(),
        &opts,
        &mut |_, _, _| {},
    )?;
    let r = rep
        .devices
        .first()
        .and_then(recommend_dtype)
        .unwrap_or_else(|| Recommendation {
            device: device.id().to_string(),
            dtype: DType::F32,
            reason: "f32 is not native and accurate for every inference op family here; \
                     use another device (run `plumb doctor`)"
                .into(),
        });
    memo.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, r.clone());
    Ok(r)
}

/// The dtype to run inference in on `device` (see [`recommendation`]).
pub fn recommended_dtype(device: &Device) -> Result<DType> {
    Ok(recommendation(device)?.dtype)
}
