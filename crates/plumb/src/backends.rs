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

/// Every CUDA device (`cuda:N`), and notes on what is missing (no driver, no NVRTC, ...).
pub(crate) fn cuda() -> (Vec<Arc<dyn Backend>>, Vec<String>) {
    let found = plumb_cuda::discover();
    let devices = found
        .devices
        .into_iter()
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .collect();
    (devices, found.notes)
}
