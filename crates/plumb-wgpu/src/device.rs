//! Adapter discovery and what an adapter becomes: DeviceInfo, Capabilities, limits.

use crate::launch::{Ctx, DevLimits};
use crate::profile::{self, Profile};
use crate::WgpuBackend;
use plumb_core::{
    Capabilities, DType, DeviceInfo, DeviceKind, Error, Limits, OpFamily, Result, Support,
};
use std::sync::Arc;

fn kind_of(t: wgpu::DeviceType) -> DeviceKind {
    match t {
        wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
        wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
        wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => DeviceKind::VirtualGpu,
        wgpu::DeviceType::Cpu => DeviceKind::EmulatedGpu,
    }
}

fn api_of(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "Dx12",
        wgpu::Backend::Gl => "Gl",
        _ => "other",
    }
}

/// Sort key: lower is preferred (device type first, then native APIs before GL).
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let t = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let a = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (t, a)
}

/// Every usable adapter of every backend as `gpu:N`, in preference order.
pub fn discover(profile: Option<&str>) -> Result<Vec<WgpuBackend>> {
    let prof = profile
        .filter(|p| !p.trim().is_empty())
        .map(profile::parse)
        .transpose()?;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::all();
    let instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| rank(&a.get_info()));
    let mut out = Vec::new();
    for adapter in adapters {
        let info = adapter.get_info();
        if !adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            tracing::warn!(adapter = %info.name, api = ?info.backend, "skipped: no compute shaders");
            continue;
        }
        let id = format!("gpu:{}", out.len());
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            open(&adapter, id.clone(), prof.as_ref())
        }));
        match made {
            Ok(Ok(b)) => out.push(b),
            Ok(Err(e)) => tracing::warn!(adapter = %info.name, "skipped: {e}"),
            Err(_) => tracing::warn!(adapter = %info.name, "skipped: wgpu panicked opening it"),
        }
    }
    Ok(out)
}

fn open(adapter: &wgpu::Adapter, id: String, prof: Option<&Profile>) -> Result<WgpuBackend> {
    let info = adapter.get_info();
    let af = adapter.features();
    let mut limits = adapter.limits();
    let mut want = wgpu::Features::SHADER_F16
        | wgpu::Features::SHADER_INT64
        | wgpu::Features::SHADER_F64
        | wgpu::Features::SUBGROUP;
    let mut max_buffer = limits.max_buffer_size;
    let mut max_binding = limits.max_storage_buffer_binding_size;
    if let Some(p) = prof {
        let mut mask = wgpu::Features::empty();
        mask.set(wgpu::Features::SHADER_F16, p.f16);
        mask.set(wgpu::Features::SHADER_INT64, p.i64);
        mask.set(wgpu::Features::SHADER_F64, p.f64);
        mask.set(wgpu::Features::SUBGROUP, p.subgroup);
        want &= mask;
        max_buffer = max_buffer.min(p.max_buffer);
        max_binding = max_binding.min(p.max_binding);
        limits.max_compute_workgroup_storage_size = limits
            .max_compute_workgroup_storage_size
            .min(p.workgroup_storage);
        limits.max_compute_invocations_per_workgroup = limits
            .max_compute_invocations_per_workgroup
            .min(p.invocations);
    }
    let mut features = af & want;
    let coop = prof.is_none() && coop_f16_available(adapter, features);
    let mut desc = wgpu::DeviceDescriptor {
        label: Some("plumb"),
        required_features: features,
        required_limits: limits,
        ..Default::default()
    };
    if coop {
        features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        desc.required_features = features;
        // SAFETY: wgpu's experimental cooperative-matrix extension; Plumb uses it in one kernel
        // (kernels/matmul_coop.wgsl), only on shapes it was written for, and
        // PLUMB_WGPU_COOP=0 turns it off.
        desc.experimental_features = unsafe { wgpu::ExperimentalFeatures::enabled() };
    }
    let (device, queue) = pollster::block_on(adapter.request_device(&desc))
        .map_err(|e| Error::backend(&id, "open adapter", e.to_string()))?;
    let has = |f| features.contains(f);
    let (f16, i64, f64, sg) = (
        has(wgpu::Features::SHADER_F16),
        has(wgpu::Features::SHADER_INT64),
        has(wgpu::Features::SHADER_F64),
        has(wgpu::Features::SUBGROUP),
    );
    let mut names = Vec::new();
    for (flag, name) in [
        (wgpu::Features::SHADER_F16, "SHADER_F16"),
        (wgpu::Features::SHADER_INT64, "SHADER_INT64"),
        (wgpu::Features::SHADER_F64, "SHADER_F64"),
        (wgpu::Features::SUBGROUP, "SUBGROUP"),
        (
            wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
            "COOPERATIVE_MATRIX(f16 16x16x16)",
        ),
    ] {
        if features.contains(flag) {
            names.push(name.to_string());
        }
    }
    let climits = Limits {
        max_buffer_bytes: max_buffer,
        max_binding_bytes: max_binding,
        memory_bytes: None,
    };
    let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
        (false, false) => format!("{} {}", info.driver, info.driver_info),
        (false, true) => info.driver.clone(),
        (true, false) => info.driver_info.clone(),
        (true, true) => "unknown".to_string(),
    };
    let dinfo = DeviceInfo {
        id: id.clone(),
        name: info.name.clone(),
        kind: kind_of(info.device_type),
        api: api_of(info.backend).to_string(),
        driver,
        features: names,
        profile: prof.map(|p| p.name.to_string()),
    };
    let caps = capabilities(f16, i64, f64, climits);
    let mut ctx = Ctx::new(
        id,
        device,
        queue,
        DevLimits {
            max_buffer,
            max_binding,
        },
        f16,
        i64,
        f64,
        sg,
    );
    ctx.coop_f16 = coop;
    // OpenGL devices take one context lock for every call, and wgpu panics after waiting 6 s
    // for it: calls from several threads go through the gate one at a time instead
    if info.backend == wgpu::Backend::Gl {
        ctx.gate = Some(std::sync::Mutex::new(()));
    }
    Ok(WgpuBackend::from_parts(dinfo, caps, Arc::new(ctx)))
}

/// Whether the f16 tensor-core matmul can run here: the experimental cooperative-matrix feature
/// with 16x16x16 f16 × f16 → f32 tiles, SHADER_F16, and subgroups of exactly 32 invocations
/// (the kernel's workgroup is one subgroup). `PLUMB_WGPU_COOP=0` says no.
fn coop_f16_available(adapter: &wgpu::Adapter, features: wgpu::Features) -> bool {
    use wgpu::CooperativeScalarType as S;
    if std::env::var("PLUMB_WGPU_COOP").is_ok_and(|v| v == "0")
        || !features.contains(wgpu::Features::SHADER_F16)
        || !adapter
            .features()
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    {
        return false;
    }
    let info = adapter.get_info();
    info.subgroup_min_size == 32
        && info.subgroup_max_size == 32
        && adapter.cooperative_matrix_properties().iter().any(|p| {
            (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                && p.ab_type == S::F16
                && p.cr_type == S::F32
        })
}

/// The capability table, from features only (never from the adapter's name).
pub fn capabilities(f16: bool, i64: bool, f64: bool, limits: Limits) -> Capabilities {
    use DType::*;
    let mut c = Capabilities::none("no kernel for this dtype", limits);
    let no_f16 = || Support::unsupported("the adapter has no SHADER_F16 (WGSL `enable f16`)");
    let no_i64 = || Support::unsupported("the adapter has no SHADER_INT64");
    let no_f64 = || {
        Support::unsupported(if f64 {
            "f64 compute kernels are not provided (SPIR-V/WGSL have no f64 exp/log/tanh…); only casts, copies and indexing"
        } else {
            "the adapter has no SHADER_F64 (WGSL has no f64 on Metal)"
        })
    };
    let half = |c: &mut Capabilities, fam: OpFamily| {
        c.set(fam, F32, Support::Native);
        c.set(fam, F16, if f16 { Support::Native } else { no_f16() });
        c.set(fam, BF16, Support::Emulated { via: F32 });
        c.set(fam, F64, no_f64());
    };
    for fam in [OpFamily::Elementwise, OpFamily::Reduce] {
        half(&mut c, fam);
        c.set_all(fam, &[Bool, U8, I32], Support::Native);
        c.set(fam, I64, if i64 { Support::Native } else { no_i64() });
    }
    for fam in [
        OpFamily::Softmax,
        OpFamily::Norm,
        OpFamily::Matmul,
        OpFamily::Rope,
    ] {
        half(&mut c, fam);
        c.set_all(
            fam,
            &[Bool, U8, I32, I64],
            Support::unsupported("a floating dtype is needed"),
        );
    }
    c.set_all(OpFamily::QMatmul, &DType::QUANTIZED, Support::Native);
    // data movement is bit-exact for every dtype, whatever the shader features
    c.set_all(OpFamily::Index, &DType::PLAIN, Support::Native);
    c.set_all(OpFamily::Copy, &DType::ALL, Support::Native);
    // casts: f16 converts through unpack2x16float / an integer round-to-nearest-even without
    // SHADER_F16, so upcasting f16 to f32 always works; bf16 <-> f32 is exact bit arithmetic
    c.set_all(
        OpFamily::Cast,
        &[Bool, U8, I32, F32, F16, BF16],
        Support::Native,
    );
    c.set(
        OpFamily::Cast,
        I64,
        if i64 { Support::Native } else { no_i64() },
    );
    // f64 casts without SHADER_F64 convert the IEEE bits through f32 in integer arithmetic
    c.set(
        OpFamily::Cast,
        F64,
        if f64 {
            Support::Native
        } else {
            Support::Emulated { via: F32 }
        },
    );
    c
}
