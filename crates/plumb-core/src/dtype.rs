//! Element types: names, sizes, parsing, and the mappings to safetensors and GGUF type ids.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every element type Plumb knows. Quantized dtypes are *storage* dtypes: blocks of
/// `block_len()` elements packed into `block_bytes()` bytes (GGUF layouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Bool,
    U8,
    I32,
    I64,
    F16,
    BF16,
    F32,
    F64,
    Q4_0,
    Q4_1,
    Q8_0,
}

impl DType {
    /// All dtypes, in display order.
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::U8,
        DType::I32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q8_0,
    ];
    /// The dtypes elements can be computed in (everything but the block-quantized ones).
    pub const PLAIN: [DType; 8] = [
        DType::Bool,
        DType::U8,
        DType::I32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ];
    pub const FLOATS: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];
    pub const QUANTIZED: [DType; 3] = [DType::Q4_0, DType::Q4_1, DType::Q8_0];

    /// Short lowercase name, as printed and parsed (`f32`, `bf16`, `q4_1`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Q4_0 => "q4_0",
            DType::Q4_1 => "q4_1",
            DType::Q8_0 => "q8_0",
        }
    }

    /// Elements per storage block: 1 for plain dtypes, 32 for the GGUF block formats.
    pub fn block_len(self) -> usize {
        if self.is_quantized() {
            32
        } else {
            1
        }
    }

    /// Bytes per storage block (per element for plain dtypes).
    pub fn block_bytes(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
            DType::Q4_0 => 18, // f16 d + 16 bytes of nibbles
            DType::Q4_1 => 20, // f16 d + f16 m + 16 bytes of nibbles
            DType::Q8_0 => 34, // f16 d + 32 i8
        }
    }

    /// Size in bytes of one element; `None` for block-quantized dtypes.
    pub fn size(self) -> Option<usize> {
        (!self.is_quantized()).then(|| self.block_bytes())
    }

    /// Bytes needed to store `n` elements (rounded up to whole blocks).
    pub fn storage_bytes(self, n: usize) -> usize {
        n.div_ceil(self.block_len()) * self.block_bytes()
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, DType::Q4_0 | DType::Q4_1 | DType::Q8_0)
    }
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }
    pub fn is_int(self) -> bool {
        matches!(self, DType::U8 | DType::I32 | DType::I64)
    }
    /// f16 and bf16: computed with f32 accumulation in matmul, reductions, softmax and norms.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The documented comparison tolerance against the f64 oracle (relative, with the same
    /// value used as an absolute floor near zero).
    pub fn tolerance(self) -> f64 {
        match self {
            DType::F64 => 1e-12,
            DType::F32 => 1e-5,
            DType::F16 => 1e-3,
            DType::BF16 => 1e-2,
            DType::Q8_0 => 1e-2,
            DType::Q4_0 | DType::Q4_1 => 1e-1,
            DType::Bool | DType::U8 | DType::I32 | DType::I64 => 0.0,
        }
    }

    /// The safetensors dtype string, where the format has one.
    pub fn safetensors_name(self) -> Option<&'static str> {
        Some(match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F32 => "F32",
            DType::F64 => "F64",
            _ => return None,
        })
    }

    pub fn from_safetensors_name(s: &str) -> Result<DType> {
        Ok(match s {
            "BOOL" => DType::Bool,
            "U8" => DType::U8,
            "I32" => DType::I32,
            "I64" => DType::I64,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F32" => DType::F32,
            "F64" => DType::F64,
            other => {
                return Err(Error::UnknownDType {
                    name: other.to_string(),
                    context: "safetensors dtype".into(),
                })
            }
        })
    }

    /// The GGML/GGUF tensor type id, where GGUF has one.
    pub fn gguf_type(self) -> Option<u32> {
        Some(match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Q4_0 => 2,
            DType::Q4_1 => 3,
            DType::Q8_0 => 8,
            DType::I32 => 26,
            DType::I64 => 27,
            DType::F64 => 28,
            DType::BF16 => 30,
            DType::Bool | DType::U8 => return None,
        })
    }

    pub fn from_gguf_type(id: u32) -> Result<DType> {
        Ok(match id {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::Q4_0,
            3 => DType::Q4_1,
            8 => DType::Q8_0,
            26 => DType::I32,
            27 => DType::I64,
            28 => DType::F64,
            30 => DType::BF16,
            other => {
                return Err(Error::UnknownDType {
                    name: format!("ggml type {other}"),
                    context: "GGUF tensor type".into(),
                })
            }
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<DType> {
        let lower = s.trim().to_ascii_lowercase();
        let d = match lower.as_str() {
            "bool" => DType::Bool,
            "u8" | "uint8" => DType::U8,
            "i32" | "int32" => DType::I32,
            "i64" | "int64" => DType::I64,
            "f16" | "float16" | "half" => DType::F16,
            "bf16" | "bfloat16" => DType::BF16,
            "f32" | "float32" | "float" => DType::F32,
            "f64" | "float64" | "double" => DType::F64,
            "q4_0" => DType::Q4_0,
            "q4_1" => DType::Q4_1,
            "q8_0" => DType::Q8_0,
            _ => {
                return Err(Error::UnknownDType {
                    name: s.to_string(),
                    context: format!(
                        "expected one of: {}",
                        DType::ALL.map(|d| d.name()).join(", ")
                    ),
                })
            }
        };
        Ok(d)
    }
}

/// Rust element types that map to a plain [`DType`].
pub trait Element: Copy + Send + Sync + bytemuck::Pod + 'static {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

macro_rules! element {
    ($t:ty, $d:expr, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            fn to_f64(self) -> f64 {
                let f: fn($t) -> f64 = $to;
                f(self)
            }
            fn from_f64(v: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(v)
            }
        }
    };
}

element!(u8, DType::U8, |x| x as f64, |v| v as u8);
element!(i32, DType::I32, |x| x as f64, |v| v as i32);
element!(i64, DType::I64, |x| x as f64, |v| v as i64);
element!(f32, DType::F32, |x| x as f64, |v| v as f32);
element!(f64, DType::F64, |x| x, |v| v);
element!(half::f16, DType::F16, |x| x.to_f64(), half::f16::from_f64);
element!(
    half::bf16,
    DType::BF16,
    |x| x.to_f64(),
    half::bf16::from_f64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert!("f128"
            .parse::<DType>()
            .unwrap_err()
            .to_string()
            .contains("f128"));
    }

    #[test]
    fn safetensors_and_gguf_ids_round_trip() {
        for d in DType::ALL {
            if let Some(s) = d.safetensors_name() {
                assert_eq!(DType::from_safetensors_name(s).unwrap(), d);
            }
            if let Some(id) = d.gguf_type() {
                assert_eq!(DType::from_gguf_type(id).unwrap(), d);
            }
        }
        assert_eq!(DType::Q4_1.storage_bytes(64), 40);
        assert_eq!(DType::Q8_0.storage_bytes(33), 68);
    }
}
