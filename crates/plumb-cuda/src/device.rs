//! Discovery of `cuda:N` devices and what each declares: DeviceInfo, Capabilities, limits.
//!
//! Every CUDA library is loaded at run time: the driver (libcuda) for the devices, NVRTC
//! (libnvrtc) to compile the kernels, cuBLAS (libcublas) for float matmuls. A machine without the
//! driver has no `cuda:N` (discovery says why); a device whose NVRTC is missing is listed with
//! every op unsupported and the reason; without cuBLAS, matmul is unsupported with the reason.

use crate::ctx::Ctx;
use crate::CudaBackend;
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::CudaContext;
use plumb_core::{Capabilities, DType, DeviceInfo, DeviceKind, Limits, OpFamily, Support};
use std::sync::Arc;

/// What discovery found: the devices, and notes on what is missing and why.
pub struct Found {
    pub devices: Vec<CudaBackend>,
    pub notes: Vec<String>,
}

/// Every CUDA device as `cuda:N`. Never panics: a missing library is a note.
pub fn discover() -> Found {
    let mut notes = Vec::new();
    if std::env::var("PLUMB_CUDA").is_ok_and(|v| v == "0") {
        notes.push("cuda: disabled by PLUMB_CUDA=0".into());
        return Found {
            devices: vec![],
            notes,
        };
    }
    // SAFETY: probing only tries to dlopen the library names; nothing is called yet.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        notes.push("cuda: no NVIDIA driver library (libcuda.so) on this machine".into());
        return Found {
            devices: vec![],
            notes,
        };
    }
    let count = match std::panic::catch_unwind(CudaContext::device_count) {
        Ok(Ok(n)) => n.max(0) as usize,
        Ok(Err(e)) => {
            notes.push(format!(
                "cuda: the driver is present but cuInit failed: {e:?}"
            ));
            return Found {
                devices: vec![],
                notes,
            };
        }
        Err(_) => {
            notes.push("cuda: loading the driver library failed".into());
            return Found {
                devices: vec![],
                notes,
            };
        }
    };
    if count == 0 {
        notes.push("cuda: the driver reports no CUDA devices".into());
    }
    let nvrtc = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    let blas = unsafe { cudarc::cublas::sys::is_culib_present() };
    if !nvrtc {
        notes.push(
            "cuda: NVRTC (libnvrtc.so) not found: CUDA kernels cannot be compiled; add the CUDA \
             toolkit's lib64 to LD_LIBRARY_PATH"
                .into(),
        );
    }
    if !blas {
        notes.push("cuda: cuBLAS (libcublas.so) not found: matmul is unsupported on cuda:N".into());
    }
    let mut devices = Vec::new();
    for ordinal in 0..count {
        match open(ordinal, nvrtc, blas) {
            Ok(d) => devices.push(d),
            Err(e) => notes.push(format!("cuda:{ordinal}: skipped: {e}")),
        }
    }
    Found { devices, notes }
}

fn open(ordinal: usize, nvrtc: bool, blas: bool) -> Result<CudaBackend, String> {
    let cuda = CudaContext::new(ordinal).map_err(|e| format!("{e:?}"))?;
    let name = cuda.name().map_err(|e| format!("{e:?}"))?;
    let (major, minor) = cuda.compute_capability().map_err(|e| format!("{e:?}"))?;
    let memory = cuda.total_mem().map_err(|e| format!("{e:?}"))? as u64;
    let mut v = 0i32;
    // SAFETY: the driver is loaded and initialised (device_count ran cuInit); v is a valid out-pointer
    let driver = match unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) } {
        cudarc::driver::sys::CUresult::CUDA_SUCCESS => {
            format!("CUDA driver API {}.{}", v / 1000, (v % 1000) / 10)
        }
        _ => "CUDA driver".into(),
    };
    let integrated = cuda
        .attribute(Attr::CU_DEVICE_ATTRIBUTE_INTEGRATED)
        .unwrap_or(0)
        == 1;
    let sms = cuda
        .attribute(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .unwrap_or(0);
    let id = format!("cuda:{ordinal}");
    let mut features = vec![format!("sm_{major}{minor}"), format!("{sms} SMs")];
    if nvrtc {
        features.push("NVRTC".into());
    }
    if blas {
        features.push("cuBLAS".into());
    }
    let info = DeviceInfo {
        id: id.clone(),
        name,
        kind: if integrated {
            DeviceKind::IntegratedGpu
        } else {
            DeviceKind::DiscreteGpu
        },
        api: "CUDA".into(),
        driver,
        features,
        profile: None,
    };
    let limits = Limits {
        max_buffer_bytes: memory,
        max_binding_bytes: memory,
        memory_bytes: Some(memory),
    };
    let caps = capabilities(limits, nvrtc, blas);
    // NVRTC's oldest target is compute_75; older devices get that and a clear compile error
    let arch: &'static str =
        Box::leak(format!("compute_{}", (major * 10 + minor).max(75)).into_boxed_str());
    let ctx = Ctx::new(id, cuda, blas, arch)?;
    Ok(CudaBackend::from_parts(info, caps, Arc::new(ctx)))
}

/// The capability table: a kernel for every (op family, dtype) the op set defines (halves
/// compute in f32, f64 and i64 are native), less what a missing library takes away.
pub fn capabilities(limits: Limits, nvrtc: bool, blas: bool) -> Capabilities {
    if !nvrtc {
        return Capabilities::none(
            "NVRTC (libnvrtc.so) was not found, so no CUDA kernel can be compiled",
            limits,
        );
    }
    let mut caps = Capabilities::full_op_set(limits);
    if !blas {
        caps.set_all(
            OpFamily::Matmul,
            &DType::FLOATS,
            Support::unsupported("cuBLAS (libcublas.so) was not found on this machine"),
        );
    }
    caps
}
