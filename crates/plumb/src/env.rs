//! The `PLUMB_*` settings that the backends read from the environment (README.md,
//! "Environment"), checked once at device discovery: a value the runtime would not understand
//! is an error naming the variable, the value and what it takes. The backends read them where
//! they use them and treat anything else as unset, so without this check a typo ran silently
//! with the default (`PLUMB_NUM_THREADS=abc` on every core, `PLUMB_CPU_SIMD=avx` at AVX-512).
//! An empty value counts as unset. `PLUMB_POLICY`, `PLUMB_DEVICE` and `PLUMB_WGPU_PROFILE` are
//! checked where they are parsed.

use plumb_core::{Error, Result};

/// What a setting takes.
#[derive(Clone, Copy)]
enum Takes {
    /// a whole number of at least the given value
    Count(u64),
    /// one of these words
    OneOf(&'static [&'static str]),
}

const SWITCH: Takes = Takes::OneOf(&["0", "1"]);

const SETTINGS: [(&str, Takes); 14] = [
    ("PLUMB_NUM_THREADS", Takes::Count(1)),
    ("PLUMB_CPU_POOL_MB", Takes::Count(0)),
    ("PLUMB_CUDA_POOL_MB", Takes::Count(0)),
    ("PLUMB_CPU_SIMD", Takes::OneOf(&["avx2", "baseline"])),
    ("PLUMB_CPU_QACT", Takes::OneOf(&["i16", "f32", "q8"])),
    ("PLUMB_CPU_SGEMM", Takes::OneOf(&["plumb", "gemm"])),
    ("PLUMB_CPU_BF16_DOT", SWITCH),
    ("PLUMB_CPU_HUGEPAGES", SWITCH),
    ("PLUMB_CPU_ROWS", SWITCH),
    ("PLUMB_CUDA", SWITCH),
    ("PLUMB_CUDA_PROFILE", SWITCH),
    ("PLUMB_WGPU_COOP", SWITCH),
    ("PLUMB_WGPU_TRUSTED", SWITCH),
    ("PLUMB_DUMP_KERNELS", SWITCH),
];

/// Every setting in the environment that is set and not empty takes a value it understands.
pub fn check() -> Result<()> {
    for (name, takes) in SETTINGS {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        check_one(name, value.trim(), takes)?;
    }
    Ok(())
}

fn check_one(name: &str, value: &str, takes: Takes) -> Result<()> {
    let ok = match takes {
        _ if value.is_empty() => true,
        Takes::Count(min) => value.parse::<u64>().is_ok_and(|n| n >= min),
        Takes::OneOf(words) => words.contains(&value),
    };
    if ok {
        return Ok(());
    }
    let wanted = match takes {
        Takes::Count(0) => "a whole number (0 or more)".to_string(),
        Takes::Count(min) => format!("a whole number of at least {min}"),
        Takes::OneOf(words) => format!("one of {}", words.join(", ")),
    };
    Err(Error::invalid(
        "environment",
        format!("{name}={value:?} is not understood: it takes {wanted} (or unset it)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_a_setting_are_errors_naming_it() {
        let threads = Takes::Count(1);
        assert!(check_one("PLUMB_NUM_THREADS", "4", threads).is_ok());
        assert!(check_one("PLUMB_NUM_THREADS", "", threads).is_ok());
        for bad in ["0", "abc", "-3", "2.5"] {
            let e = check_one("PLUMB_NUM_THREADS", bad, threads).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains(&format!("PLUMB_NUM_THREADS=\"{bad}\"")) && m.contains("at least 1"),
                "{m}"
            );
        }
        assert!(check_one("PLUMB_CPU_POOL_MB", "0", Takes::Count(0)).is_ok());
        let simd = Takes::OneOf(&["avx2", "baseline"]);
        assert!(check_one("PLUMB_CPU_SIMD", "avx2", simd).is_ok());
        let m = check_one("PLUMB_CPU_SIMD", "avx", simd)
            .unwrap_err()
            .to_string();
        assert!(m.contains("one of avx2, baseline"), "{m}");
        assert!(check_one("PLUMB_CUDA", "off", SWITCH).is_err());
    }
}
