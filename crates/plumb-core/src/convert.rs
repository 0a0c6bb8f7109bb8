//! Host-side conversions between dtypes' byte encodings and f64 (readback, uploads, oracles).

use crate::dtype::DType;
use crate::error::{Error, Result};
use half::{bf16, f16};

/// Decode `bytes` of `dtype` (row-major) into f64 values. Quantized dtypes are dequantized.
pub fn bytes_to_f64(dtype: DType, bytes: &[u8], numel: usize) -> Result<Vec<f64>> {
    if dtype.is_quantized() {
        return Ok(crate::quant::dequantize(dtype, bytes, numel)?
            .into_iter()
            .map(f64::from)
            .collect());
    }
    let need = dtype.storage_bytes(numel);
    if bytes.len() < need {
        return Err(Error::invalid(
            "decode",
            format!(
                "{numel} {dtype} elements need {need} bytes, got {}",
                bytes.len()
            ),
        ));
    }
    let b = &bytes[..need];
    Ok(match dtype {
        DType::Bool | DType::U8 => b.iter().map(|&x| x as f64).collect(),
        DType::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        DType::I64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64)
            .collect(),
        DType::F16 => b
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        DType::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        // dequantized above
        DType::Q4_0 | DType::Q4_1 | DType::Q8_0 => Vec::new(),
    })
}

/// The least and greatest value of integer data (i32, i64, u8) in `bytes`: what a device can keep
/// when ids are uploaded, to range-check them later without reading them back. `None` for other
/// dtypes and for no values.
pub fn int_range(dtype: DType, bytes: &[u8], numel: usize) -> Result<Option<(f64, f64)>> {
    if numel == 0 || !matches!(dtype, DType::I32 | DType::I64 | DType::U8) {
        return Ok(None);
    }
    let vals = bytes_to_f64(dtype, bytes, numel)?;
    let first = (f64::INFINITY, f64::NEG_INFINITY);
    Ok(Some(
        vals.iter()
            .fold(first, |(lo, hi), &v| (lo.min(v), hi.max(v))),
    ))
}

/// f64 → integer with the documented cast rule: truncate toward zero, saturate, NaN → 0.
pub fn f64_to_int_saturating(v: f64, min: f64, max: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.trunc().clamp(min, max)
    }
}

/// Encode f64 values as `dtype` bytes (round-to-nearest-even into halves, saturating into
/// integers, quantizing into block dtypes).
pub fn f64_to_bytes(dtype: DType, values: &[f64]) -> Result<Vec<u8>> {
    if dtype.is_quantized() {
        let f: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        return crate::quant::quantize(dtype, &f);
    }
    let mut out = Vec::with_capacity(dtype.storage_bytes(values.len()));
    for &v in values {
        match dtype {
            DType::Bool => out.push((v != 0.0) as u8),
            DType::U8 => out.push(f64_to_int_saturating(v, 0.0, 255.0) as u8),
            DType::I32 => out.extend_from_slice(
                &(f64_to_int_saturating(v, i32::MIN as f64, i32::MAX as f64) as i32).to_le_bytes(),
            ),
            DType::I64 => {
                out.extend_from_slice(&(if v.is_nan() { 0 } else { v as i64 }).to_le_bytes())
            }
            DType::F16 => out.extend_from_slice(&f16::from_f64(v).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&bf16::from_f64(v).to_le_bytes()),
            DType::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&v.to_le_bytes()),
            DType::Q4_0 | DType::Q4_1 | DType::Q8_0 => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_range_of_ids_only() {
        let b = f64_to_bytes(DType::I32, &[3.0, -2.0, 7.0]).unwrap();
        assert_eq!(int_range(DType::I32, &b, 3).unwrap(), Some((-2.0, 7.0)));
        let b = f64_to_bytes(DType::I64, &[5.0]).unwrap();
        assert_eq!(int_range(DType::I64, &b, 1).unwrap(), Some((5.0, 5.0)));
        assert_eq!(int_range(DType::U8, &[9, 1], 2).unwrap(), Some((1.0, 9.0)));
        let b = f64_to_bytes(DType::F32, &[1.0]).unwrap();
        assert_eq!(int_range(DType::F32, &b, 1).unwrap(), None, "not ids");
        assert_eq!(int_range(DType::I32, &[], 0).unwrap(), None, "no values");
        assert!(int_range(DType::I32, &[0; 3], 1).is_err(), "too few bytes");
    }
}
