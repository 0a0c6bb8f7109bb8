//! Device discovery: every backend compiled in, found at run time, once per process.
//!
//! Order of [`devices`]: `cpu`, then every `cuda:N`, then every wgpu adapter as
//! `gpu:N` in the wgpu backend's preference order, then `meta`. Every device gets the CPU device
//! attached as its `+cpu-fallback` target and the policy from `PLUMB_POLICY` (default `auto`).
//!
//! [`auto`] ranks by [`DeviceKind`] only (never by name or API): discrete GPU > integrated GPU >
//! CPU > virtual GPU > CPU-emulated GPU (lavapipe, llvmpipe). A CPU-emulated GPU runs GPU kernels
//! on the same cores as the CPU backend, through a much slower path, so it never beats the CPU;
//! a virtual GPU's speed is unknown (paravirtualized through a host), so it is only picked on
//! request. Ties keep discovery order, so a `cuda:N` device would beat a `gpu:N` of the same kind.
//! `PLUMB_DEVICE` overrides the ranking.

use crate::backends;
use plumb_core::{Backend, Device, DeviceKind, Error, Policy, Result};
use std::sync::{Arc, OnceLock};

struct Discovery {
    /// the CPU device (also every device's fallback)
    cpu: Device,
    /// cuda:N then gpu:N, in preference order
    accel: Vec<Device>,
    meta: Device,
    /// why a kind of device is missing, or what discovery could not do
    notes: Vec<String>,
}

static DISCOVERY: OnceLock<Discovery> = OnceLock::new();

fn discovery() -> Result<&'static Discovery> {
    // parse first: a bad PLUMB_POLICY (or other PLUMB_* setting) is an error on every call, not
    // a silent default
    crate::env::check()?;
    let policy = Policy::from_env()?;
    Ok(DISCOVERY.get_or_init(|| discover_all(policy)))
}

fn discover_all(policy: Policy) -> Discovery {
    let cpu = Device::with_backend_policy(backends::cpu(), policy);
    let (cudas, mut notes) = backends::cuda();
    let mut accel = Vec::new();
    for b in cudas {
        let d = Device::with_backend_policy(b, policy);
        d.set_fallback(cpu.clone());
        accel.push(d);
    }
    let profile = std::env::var("PLUMB_WGPU_PROFILE")
        .ok()
        .filter(|s| !s.trim().is_empty());
    match backends::wgpu(profile.as_deref()) {
        Ok(gpus) if gpus.is_empty() => notes.push(
            "gpu: no GPU adapters found by wgpu (Vulkan, Metal, DX12, GL); on Linux, \
             `apt-get install mesa-vulkan-drivers` adds lavapipe, a Vulkan driver on the CPU"
                .into(),
        ),
        Ok(gpus) => {
            for b in gpus {
                let d = Device::with_backend_policy(b, policy);
                d.set_fallback(cpu.clone());
                accel.push(d);
            }
        }
        Err(e) => notes.push(format!("gpu: wgpu discovery failed: {e}")),
    }
    let meta = Device::meta();
    meta.set_policy(policy);
    for n in &notes {
        tracing::info!("{n}");
    }
    Discovery {
        cpu,
        accel,
        meta,
        notes,
    }
}

/// Every device on this machine: `cpu`, every `gpu:N`, then `meta`. Discovered once per process;
/// later calls return handles on the same devices (shared policy and run report).
pub fn devices() -> Result<Vec<Device>> {
    let d = discovery()?;
    let mut out = vec![d.cpu.clone()];
    out.extend(d.accel.iter().cloned());
    out.push(d.meta.clone());
    Ok(out)
}

/// Every wgpu adapter again, with `profile` (`apple-m1`, `apple-m2`, ...) masking its features
/// and limits down to that chip's; wrapped like discovered devices. Not cached: each call makes
/// new adapters.
pub fn devices_with_profile(profile: &str) -> Result<Vec<Device>> {
    let d = discovery()?;
    let policy = Policy::from_env()?;
    Ok(backends::wgpu(Some(profile))?
        .into_iter()
        .map(|b| {
            let dev = Device::with_backend_policy(b, policy);
            dev.set_fallback(d.cpu.clone());
            dev
        })
        .collect())
}

/// Why a kind of device is missing (no GPU adapters, no CUDA backend) or failed to start.
pub fn discovery_notes() -> Result<Vec<String>> {
    Ok(discovery()?.notes.clone())
}

/// Wrap a backend the way discovery does: the policy from `PLUMB_POLICY` and the CPU device as
/// its fallback. For backends created outside discovery (a wgpu adapter under another profile,
/// a test backend).
pub fn device_from_backend(backend: Arc<dyn Backend>) -> Result<Device> {
    let d = discovery()?;
    let dev = Device::with_backend_policy(backend, Policy::from_env()?);
    dev.set_fallback(d.cpu.clone());
    Ok(dev)
}

fn unknown(name: &str, d: &Discovery) -> Error {
    let mut ids: Vec<String> = vec![d.cpu.id().to_string()];
    ids.extend(d.accel.iter().map(|x| x.id().to_string()));
    ids.push(d.meta.id().to_string());
    let mut available = ids.join(", ");
    for n in &d.notes {
        available.push_str("; ");
        available.push_str(n);
    }
    Error::UnknownDevice {
        name: name.to_string(),
        available,
    }
}

/// A device by name: `cpu`, `gpu` (the first GPU), `gpu:N`, `cuda:N`, `meta`, or `auto`.
/// Anything unknown or absent is [`Error::UnknownDevice`] listing what this machine has.
pub fn device(spec: &str) -> Result<Device> {
    let d = discovery()?;
    let s = spec.trim().to_ascii_lowercase();
    match s.as_str() {
        "auto" => auto_from(d),
        "cpu" => Ok(d.cpu.clone()),
        "meta" => Ok(d.meta.clone()),
        "gpu" => d
            .accel
            .iter()
            .find(|x| x.id().starts_with("gpu:"))
            .cloned()
            .ok_or_else(|| unknown(spec, d)),
        _ => d
            .accel
            .iter()
            .find(|x| x.id() == s)
            .cloned()
            .ok_or_else(|| unknown(spec, d)),
    }
}

/// Rank of a device kind for [`auto`]; `None` never wins (meta).
fn rank(kind: DeviceKind) -> Option<u8> {
    match kind {
        DeviceKind::DiscreteGpu => Some(5),
        DeviceKind::IntegratedGpu => Some(4),
        DeviceKind::Cpu => Some(3),
        DeviceKind::VirtualGpu => Some(2),
        DeviceKind::EmulatedGpu => Some(1),
        DeviceKind::Meta => None,
    }
}

/// Pick the device with the highest rank; the first one wins a tie.
pub(crate) fn pick_best(candidates: &[Device]) -> Option<Device> {
    let mut best: Option<(u8, &Device)> = None;
    for c in candidates {
        if let Some(r) = rank(c.info().kind) {
            if best.is_none_or(|(b, _)| r > b) {
                best = Some((r, c));
            }
        }
    }
    best.map(|(_, d)| d.clone())
}

fn auto_from(d: &Discovery) -> Result<Device> {
    let mut all = d.accel.clone();
    all.push(d.cpu.clone());
    // cpu ranks by kind like the rest; accelerators come first so a tie keeps their order
    Ok(pick_best(&all).unwrap_or_else(|| d.cpu.clone()))
}

/// The best device here: `PLUMB_DEVICE` when set, else discrete GPU > integrated GPU > CPU
/// (a CPU-emulated GPU such as lavapipe never beats the CPU).
pub fn auto() -> Result<Device> {
    let d = discovery()?;
    match std::env::var("PLUMB_DEVICE") {
        Ok(s) if !s.trim().is_empty() && s.trim() != "auto" => device(&s),
        _ => auto_from(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::{Capabilities, DeviceInfo};

    /// A backend that only has an identity, for ranking tests (never runs a kernel).
    #[derive(Debug)]
    struct Fake(DeviceInfo, Capabilities);

    fn fake(id: &str, kind: DeviceKind) -> Device {
        let info = DeviceInfo {
            id: id.into(),
            name: id.into(),
            kind,
            api: "test".into(),
            driver: "test".into(),
            features: vec![],
            profile: None,
        };
        let caps = Capabilities::none("fake", Default::default());
        Device::with_backend_policy(Arc::new(Fake(info, caps)), Policy::default())
    }

    macro_rules! no_kernels {
        ($($name:ident($($a:ty),*) -> $r:ty;)*) => {
            $(fn $name(&self, $(_: $a),*) -> $r {
                Err(Error::backend(&self.0.id, stringify!($name), "fake backend"))
            })*
        };
    }

    use plumb_core::{BinaryOp, CmpOp, DType, ReduceOp, StorageRef, UnaryOp, View};
    impl Backend for Fake {
        fn info(&self) -> &DeviceInfo {
            &self.0
        }
        fn capabilities(&self) -> &Capabilities {
            &self.1
        }
        no_kernels! {
            upload(DType, usize, &[u8]) -> Result<StorageRef>;
            download(View) -> Result<Vec<u8>>;
            full(DType, usize, f64) -> Result<StorageRef>;
            copy(View) -> Result<StorageRef>;
            cast(View, DType) -> Result<StorageRef>;
            unary(UnaryOp, View) -> Result<StorageRef>;
            binary(BinaryOp, View, View) -> Result<StorageRef>;
            cmp(CmpOp, View, View) -> Result<StorageRef>;
            where_cond(View, View, View) -> Result<StorageRef>;
            reduce(ReduceOp, View, usize, DType) -> Result<StorageRef>;
            softmax(View, bool) -> Result<StorageRef>;
            layer_norm(View, Option<View>, Option<View>, f64) -> Result<StorageRef>;
            rms_norm(View, Option<View>, f64) -> Result<StorageRef>;
            matmul(View, View) -> Result<StorageRef>;
            qmatmul(View, View) -> Result<StorageRef>;
            dequantize(View, DType) -> Result<StorageRef>;
            index_select(View, View, usize) -> Result<StorageRef>;
            gather(View, View, usize) -> Result<StorageRef>;
            cat(&[View], usize) -> Result<StorageRef>;
            rope(View, View, View, bool) -> Result<StorageRef>;
        }
    }

    #[test]
    fn ranking_is_by_kind_and_emulated_gpus_never_beat_the_cpu() {
        let cpu = fake("cpu", DeviceKind::Cpu);
        let lavapipe = fake("gpu:0", DeviceKind::EmulatedGpu);
        let virt = fake("gpu:1", DeviceKind::VirtualGpu);
        let igpu = fake("gpu:2", DeviceKind::IntegratedGpu);
        let dgpu = fake("gpu:3", DeviceKind::DiscreteGpu);
        let pick = |ds: &[&Device]| {
            let v: Vec<Device> = ds.iter().map(|d| (*d).clone()).collect();
            pick_best(&v).map(|d| d.id().to_string())
        };
        assert_eq!(pick(&[&lavapipe, &cpu]).as_deref(), Some("cpu"));
        assert_eq!(pick(&[&lavapipe, &virt, &cpu]).as_deref(), Some("cpu"));
        assert_eq!(pick(&[&lavapipe, &igpu, &cpu]).as_deref(), Some("gpu:2"));
        assert_eq!(
            pick(&[&lavapipe, &igpu, &dgpu, &cpu]).as_deref(),
            Some("gpu:3")
        );
        // a tie keeps discovery order (cuda:N is listed before gpu:N)
        let cuda = fake("cuda:0", DeviceKind::DiscreteGpu);
        assert_eq!(pick(&[&cuda, &dgpu, &cpu]).as_deref(), Some("cuda:0"));
        assert_eq!(pick(&[&Device::meta()]), None);
    }
}
