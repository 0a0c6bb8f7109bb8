//! The backends compiled into this build. The only place that names backend crates.

use plumb_core::{Backend, Result};
use std::sync::Arc;

/// The CPU backend (always present; the fallback and the oracle of every other device).
pub(crate) fn cpu() -> Arc<dyn Backend> {
    Arc::new(plumb_cpu::CpuBackend::new())
}

/// Every wgpu adapter, in preference order, with `profile` masking features and limits.
pub(crate) fn wgpu(profile: Option<&str>) -> Result<Vec<Arc<dyn Backend>>> {
    Ok(plumb_wgpu::discover(profile)?
        .into_iter()
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .collect())
}

/// Why there is no `cuda:N` device in this build.
pub(crate) const CUDA_NOTE: &str =
    "cuda: no CUDA backend in this build (not written yet); NVIDIA GPUs are reached through wgpu (Vulkan) as gpu:N";
