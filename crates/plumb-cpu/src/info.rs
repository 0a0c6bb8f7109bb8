//! What the CPU device declares: its [`DeviceInfo`] (model name, run-time detected SIMD
//! features, threads) and its [`Capabilities`] (which op family × dtype has a kernel here).

use plumb_core::{Capabilities, DeviceInfo, DeviceKind, Limits};

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

/// The CPU's capability table: a kernel for every (op family, dtype) the op set defines.
pub fn capabilities() -> Capabilities {
    let mem = total_memory();
    let max = mem.unwrap_or(u64::MAX / 2);
    Capabilities::full_op_set(Limits {
        max_buffer_bytes: max,
        max_binding_bytes: max,
        memory_bytes: mem,
    })
}
