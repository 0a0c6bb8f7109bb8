//! What a weights file holds, independent of its format: tensor descriptions and raw bytes, and
//! the host-side decoding of stored dtypes (including GGUF k-quants) into plumb dtypes.

use crate::kquant::KQuant;
use plumb_core::{DType, Error, Result};
use std::path::Path;

/// How a tensor is stored in a file: a plumb dtype, or a GGUF k-quant that plumb has no
/// storage dtype for (it is dequantized on load).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoredDType {
    Plain(DType),
    KQuant(KQuant),
}

impl StoredDType {
    pub fn name(&self) -> &'static str {
        match self {
            StoredDType::Plain(d) => d.name(),
            StoredDType::KQuant(k) => k.name(),
        }
    }
    /// Elements per block (1 for plain dtypes).
    pub fn block_len(&self) -> usize {
        match self {
            StoredDType::Plain(d) => d.block_len(),
            StoredDType::KQuant(k) => k.block_len(),
        }
    }
    pub fn block_bytes(&self) -> usize {
        match self {
            StoredDType::Plain(d) => d.block_bytes(),
            StoredDType::KQuant(k) => k.block_bytes(),
        }
    }
    /// Bytes of `numel` elements; None when `numel` is not a whole number of blocks.
    pub fn storage_bytes(&self, numel: usize) -> Option<usize> {
        if !numel.is_multiple_of(self.block_len()) {
            return None;
        }
        (numel / self.block_len()).checked_mul(self.block_bytes())
    }
    pub fn is_float(&self) -> bool {
        matches!(self, StoredDType::Plain(d) if d.is_float())
    }
    pub fn is_quantized(&self) -> bool {
        match self {
            StoredDType::Plain(d) => d.is_quantized(),
            StoredDType::KQuant(_) => true,
        }
    }
}

impl std::fmt::Display for StoredDType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor in a weights file. `shape` is row-major (outermost first) in plumb's order; for
/// GGUF that is the reverse of the file's `ne` order. `offset` is relative to the file's data
/// section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: StoredDType,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub nbytes: usize,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Decode stored bytes to f32 values on the host (any stored dtype).
pub fn decode_f32(path: &Path, info: &TensorInfo, bytes: &[u8]) -> Result<Vec<f32>> {
    let n = info.numel();
    match info.dtype {
        StoredDType::KQuant(k) => k
            .dequantize(bytes, n)
            .map_err(|e| Error::format(path, format!("tensor '{}': {e}", info.name))),
        StoredDType::Plain(d) if d.is_quantized() => plumb_core::quant::dequantize(d, bytes, n)
            .map_err(|e| Error::format(path, format!("tensor '{}': {e}", info.name))),
        StoredDType::Plain(d) => Ok(plumb_core::convert::bytes_to_f64(d, bytes, n)
            .map_err(|e| Error::format(path, format!("tensor '{}': {e}", info.name)))?
            .into_iter()
            .map(|v| v as f32)
            .collect()),
    }
}

/// Encode f32 values as `dtype` bytes (round-to-nearest-even into halves).
pub fn encode_f32(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    match dtype {
        DType::F32 => Ok(bytemuck::cast_slice(values).to_vec()),
        DType::F16 => Ok(values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect()),
        DType::BF16 => Ok(values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect()),
        DType::F64 => Ok(values
            .iter()
            .flat_map(|&v| (v as f64).to_le_bytes())
            .collect()),
        other => {
            let v: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            plumb_core::convert::f64_to_bytes(other, &v)
        }
    }
}
