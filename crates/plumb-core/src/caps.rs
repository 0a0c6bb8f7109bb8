//! Capabilities: what a device declares, when it is created, for each op family × dtype.

use crate::dtype::DType;
use crate::op::OpFamily;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Support level of one (op family, dtype) on one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum Support {
    /// A kernel computes in this dtype (accumulating in f32 where the op needs it).
    Native,
    /// Stored in this dtype, computed in `via` inside the kernel.
    Emulated { via: DType },
    /// No kernel; `reason` says why.
    Unsupported { reason: String },
}

impl Support {
    pub fn unsupported(reason: impl Into<String>) -> Self {
        Support::Unsupported {
            reason: reason.into(),
        }
    }
    pub fn is_runnable(&self) -> bool {
        !matches!(self, Support::Unsupported { .. })
    }
    pub fn short(&self) -> &'static str {
        match self {
            Support::Native => "native",
            Support::Emulated { .. } => "emulated",
            Support::Unsupported { .. } => "unsupported",
        }
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Native => f.write_str("native"),
            Support::Emulated { via } => write!(f, "emulated via {via}"),
            Support::Unsupported { reason } => write!(f, "unsupported: {reason}"),
        }
    }
}

/// What kind of device this is; `Device::auto()` ranks by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Meta,
    Cpu,
    /// a GPU API implemented in software on the CPU (lavapipe, llvmpipe)
    EmulatedGpu,
    VirtualGpu,
    IntegratedGpu,
    DiscreteGpu,
}

/// Limits the device imposes on buffers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// largest single buffer, in bytes
    pub max_buffer_bytes: u64,
    /// largest buffer range one kernel may bind, in bytes
    pub max_binding_bytes: u64,
    /// total device memory, where known
    pub memory_bytes: Option<u64>,
}

/// Facts about a device, for humans and for ranking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `cpu`, `gpu:0`, `cuda:0`, `meta`
    pub id: String,
    /// adapter or CPU model name
    pub name: String,
    pub kind: DeviceKind,
    /// API the device is reached through (`native`, `Vulkan`, `Metal`, `CUDA`, `GL`, ...)
    pub api: String,
    pub driver: String,
    /// notable hardware features (`avx512f`, `SHADER_F16`, ...)
    pub features: Vec<String>,
    /// profile applied to mask features and limits, if any (`apple-m2`)
    pub profile: Option<String>,
}

/// The capability table of one device plus its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    table: BTreeMap<(OpFamily, DType), Support>,
    pub limits: Limits,
}

impl Capabilities {
    /// Everything unsupported with `reason`; fill in with [`Capabilities::set`].
    pub fn none(reason: &str, limits: Limits) -> Self {
        let mut table = BTreeMap::new();
        for f in OpFamily::ALL {
            for d in DType::ALL {
                table.insert((f, d), Support::unsupported(reason));
            }
        }
        Capabilities { table, limits }
    }

    /// The table of a device with a kernel for every (op family, dtype) the op set defines:
    /// every plain dtype for elementwise, index, cast and copy; numbers for reductions; floats
    /// for softmax, norms, rope and matmul; quantized weights for qmatmul and copies. The rest is
    /// unsupported with the reason. Backends start from it and mask what they lack.
    pub fn full_op_set(limits: Limits) -> Self {
        let mut caps = Capabilities::none("no kernel for this dtype", limits);
        let ints = [DType::U8, DType::I32, DType::I64];
        let q = "quantized dtypes are storage only: dequantize them or use qmatmul";
        for f in OpFamily::ALL {
            caps.set_all(f, &DType::QUANTIZED, Support::unsupported(q));
        }
        for f in [
            OpFamily::Elementwise,
            OpFamily::Index,
            OpFamily::Cast,
            OpFamily::Copy,
        ] {
            caps.set_all(f, &DType::PLAIN, Support::Native);
        }
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

    pub fn set(&mut self, family: OpFamily, dtype: DType, support: Support) {
        self.table.insert((family, dtype), support);
    }

    /// Set `support` for each of `dtypes` in `family`.
    pub fn set_all(&mut self, family: OpFamily, dtypes: &[DType], support: Support) {
        for &d in dtypes {
            self.set(family, d, support.clone());
        }
    }

    pub fn get(&self, family: OpFamily, dtype: DType) -> Support {
        self.table
            .get(&(family, dtype))
            .cloned()
            .unwrap_or_else(|| Support::unsupported("not declared by the device"))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(OpFamily, DType), &Support)> {
        self.table.iter()
    }
}
