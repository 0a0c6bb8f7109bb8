//! Apple capability profiles (`PLUMB_WGPU_PROFILE=apple-m1|apple-m2|apple-m3`): mask any
//! adapter's features and limits down to what wgpu 30 exposes on that chip through Metal, so the
//! Metal code paths (f16 yes, f64 never, Metal's binding limits) run in CI on any adapter.
//!
//! Sources (wgpu-hal 30.0.1, `src/metal/adapter.rs`):
//! - `SHADER_F16` is in the Metal backend's base feature set on every device.
//! - `SHADER_INT64` = `int64 && msl_version >= 2.3`, `int64` = Apple3 family or Metal 3: every
//!   M-series chip on macOS 11 or later, so all three profiles keep it. (M1/M2/M3 differ in
//!   other features wgpu does not expose to WGSL compute; they are kept as separate names so
//!   a finer table can be added without renaming.)
//! - `SHADER_F64`: never set by the Metal backend (MSL has no double).
//! - `SUBGROUP`: set for MSL 2.1+ on Apple7+ (M1 is Apple7).
//! - `max_storage_buffer_binding_size` = `max_buffer_size` = `MTLDevice.maxBufferLength`
//!   (falls back to 1 GiB on macOS, 256 MiB on iOS). We use 256 MiB, the smallest value that
//!   backend reports, as a conservative floor: a model that fits here fits on every Mac.
//! - threadgroup memory 32 KiB and 1024 threads per threadgroup (Metal feature set tables,
//!   Apple7+).

use plumb_core::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub f16: bool,
    pub i64: bool,
    pub f64: bool,
    pub subgroup: bool,
    pub max_buffer: u64,
    pub max_binding: u64,
    pub workgroup_storage: u32,
    pub invocations: u32,
}

const MIB: u64 = 1 << 20;

pub const PROFILES: [Profile; 3] = [apple("apple-m1"), apple("apple-m2"), apple("apple-m3")];

const fn apple(name: &'static str) -> Profile {
    Profile {
        name,
        f16: true,
        i64: true,
        f64: false,
        subgroup: true,
        max_buffer: 256 * MIB,
        max_binding: 256 * MIB,
        workgroup_storage: 32 * 1024,
        invocations: 1024,
    }
}

/// The profile called `name`, or an error listing the valid names.
pub fn parse(name: &str) -> Result<Profile> {
    let n = name.trim();
    PROFILES
        .iter()
        .find(|p| p.name == n)
        .cloned()
        .ok_or_else(|| {
            Error::invalid(
                "PLUMB_WGPU_PROFILE",
                format!(
                    "unknown profile '{n}'; valid profiles: {}",
                    PROFILES.map(|p| p.name).join(", ")
                ),
            )
        })
}
