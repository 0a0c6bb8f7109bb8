//! What the CPU device declares: its [`DeviceInfo`] (model name, run-time detected SIMD
//! features, threads) and its [`Capabilities`] (which op family × dtype has a kernel here).

use plumb_core::{Capabilities, DType, DeviceInfo, DeviceKind, Limits, OpFamily, Support};

/// The CPU model string from /proc/cpuinfo, else the architecture name.
pub fn cpu_name() -> String {
    if let Ok(s) = std::fs::read_to_string("/proc/cpuinfo") {
        for key in ["model name", "Model", "Hardware", "cpu model"] {
            for line in s.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    if k.trim() == key && !v.trim().is_empty() {
                        return v.trim().to_string();
                    }
                }
            }
        }
    }
    std::env::consts::ARCH.to_string()
}

/// Total memory in bytes (MemTotal of /proc/meminfo), where readable.
pub fn total_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// SIMD features detected at run time (what the kernels dispatch on).
pub fn simd_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut f: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($name) {
                    f.push($name);
                })*
            };
        }
        probe!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512bf16",
            "avx512fp16",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {
                $(if std::arch::is_aarch64_feature_detected!($name) {
                    f.push($name);
                })*
            };
        }
        probe!("neon", "fp16", "dotprod", "bf16", "i8mm");
    }
    f.into_iter().map(String::from).collect()
}

pub fn device_info(threads: usize) -> DeviceInfo {
    let mut features = simd_features();
    features.push(format!("threads={threads}"));
    DeviceInfo {
        id: "cpu".into(),
        name: cpu_name(),
        kind: DeviceKind::Cpu,
        api: "native".into(),
        driver: format!("plumb-cpu {}", env!("CARGO_PKG_VERSION")),
        features,
        profile: None,
    }
}

/// The CPU's capability table: native wherever a kernel exists, with the reason elsewhere.
pub fn capabilities() -> Capabilities {
    let mem = total_memory();
    let max = mem.unwrap_or(u64::MAX / 2);
    let mut caps = Capabilities::none(
        "no CPU kernel for this dtype",
        Limits {
            max_buffer_bytes: max,
            max_binding_bytes: max,
            memory_bytes: mem,
        },
    );
    let ints = [DType::U8, DType::I32, DType::I64];
    let q = "quantized dtypes are storage only: dequantize them or use qmatmul";
    for f in OpFamily::ALL {
        caps.set_all(f, &DType::QUANTIZED, Support::unsupported(q));
    }
    caps.set_all(OpFamily::Elementwise, &DType::PLAIN, Support::Native);
    caps.set_all(OpFamily::Index, &DType::PLAIN, Support::Native);
    caps.set_all(OpFamily::Cast, &DType::PLAIN, Support::Native);
    caps.set_all(OpFamily::Copy, &DType::PLAIN, Support::Native);
    caps.set_all(OpFamily::Copy, &DType::QUANTIZED, Support::Native);
    caps.set_all(OpFamily::Reduce, &ints, Support::Native);
    caps.set_all(OpFamily::Reduce, &DType::FLOATS, Support::Native);
    caps.set(
        OpFamily::Reduce,
        DType::Bool,
        Support::unsupported("reductions are defined on numbers; cast bool to an integer"),
    );
    for (f, what) in [
        (OpFamily::Softmax, "softmax"),
        (OpFamily::Norm, "normalisation"),
        (OpFamily::Rope, "rotary embedding"),
        (OpFamily::Matmul, "matmul"),
    ] {
        caps.set_all(f, &DType::FLOATS, Support::Native);
        let reason = format!("{what} is defined on floating dtypes only; cast to f32 first");
        caps.set_all(f, &ints, Support::unsupported(reason.clone()));
        caps.set(f, DType::Bool, Support::unsupported(reason));
    }
    caps.set_all(
        OpFamily::QMatmul,
        &DType::PLAIN,
        Support::unsupported("qmatmul and dequantize take a q4_0, q4_1 or q8_0 weight"),
    );
    caps.set_all(OpFamily::QMatmul, &DType::QUANTIZED, Support::Native);
    caps
}
