//! GGUF block formats (reference code: readable, used for host conversions and as the oracle).
//!
//! - q8_0: 34 bytes = f16 d, then 32 × i8 q; value = q · d
//! - q4_0: 18 bytes = f16 d, then 16 bytes; byte j holds element j (low nibble) and j + 16
//!   (high nibble); value = (q − 8) · d
//! - q4_1: 20 bytes = f16 d, f16 m, then 16 bytes as q4_0; value = q · d + m

use crate::dtype::DType;
use crate::error::{Error, Result};
use half::f16;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantize one block of `dtype` into 32 floats.
pub fn dequantize_block(dtype: DType, block: &[u8], out: &mut [f32]) {
    match dtype {
        DType::Q8_0 => {
            let d = f16_at(block, 0);
            for (o, &q) in out.iter_mut().zip(&block[2..34]) {
                *o = (q as i8) as f32 * d;
            }
        }
        DType::Q4_0 => {
            let d = f16_at(block, 0);
            for j in 0..16 {
                let b = block[2 + j];
                out[j] = ((b & 0x0f) as f32 - 8.0) * d;
                out[j + 16] = ((b >> 4) as f32 - 8.0) * d;
            }
        }
        DType::Q4_1 => {
            let d = f16_at(block, 0);
            let m = f16_at(block, 2);
            for j in 0..16 {
                let b = block[4 + j];
                out[j] = (b & 0x0f) as f32 * d + m;
                out[j + 16] = (b >> 4) as f32 * d + m;
            }
        }
        _ => {}
    }
}

/// Dequantize `numel` elements of quantized `bytes` to f32.
pub fn dequantize(dtype: DType, bytes: &[u8], numel: usize) -> Result<Vec<f32>> {
    if !dtype.is_quantized() {
        return Err(Error::invalid(
            "dequantize",
            format!("{dtype} is not a quantized dtype"),
        ));
    }
    if !numel.is_multiple_of(32) || bytes.len() < dtype.storage_bytes(numel) {
        return Err(Error::invalid(
            "dequantize",
            format!(
                "{numel} {dtype} elements need {} bytes in whole blocks of 32, got {}",
                dtype.storage_bytes(numel),
                bytes.len()
            ),
        ));
    }
    let mut out = vec![0f32; numel];
    for (blk, o) in bytes
        .chunks_exact(dtype.block_bytes())
        .zip(out.chunks_exact_mut(32))
    {
        dequantize_block(dtype, blk, o);
    }
    Ok(out)
}

/// Quantize f32 values (a multiple of 32) into `dtype` blocks, the way llama.cpp's reference
/// quantizers do (q8_0/q4_0: scale from the absolute maximum; q4_1: min and range).
pub fn quantize(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    if !dtype.is_quantized() || !values.len().is_multiple_of(32) {
        return Err(Error::invalid(
            "quantize",
            format!("cannot quantize {} values to {dtype} (need a quantized dtype and a multiple of 32)", values.len()),
        ));
    }
    let mut out = Vec::with_capacity(dtype.storage_bytes(values.len()));
    for blk in values.chunks_exact(32) {
        match dtype {
            DType::Q8_0 => {
                let amax = blk.iter().fold(0f32, |a, &x| a.max(x.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(blk.iter().map(|&x| ((x * id).round() as i8) as u8));
            }
            DType::Q4_0 => {
                let mut max = 0f32;
                for &x in blk {
                    if x.abs() > max.abs() {
                        max = x;
                    }
                }
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                for j in 0..16 {
                    let q0 = ((blk[j] * id + 8.5) as i32).clamp(0, 15) as u8;
                    let q1 = ((blk[j + 16] * id + 8.5) as i32).clamp(0, 15) as u8;
                    out.push(q0 | (q1 << 4));
                }
            }
            DType::Q4_1 => {
                let min = blk.iter().fold(f32::INFINITY, |a, &x| a.min(x));
                let max = blk.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
                for j in 0..16 {
                    let q0 = (((blk[j] - min) * id + 0.5) as i32).clamp(0, 15) as u8;
                    let q1 = (((blk[j + 16] - min) * id + 0.5) as i32).clamp(0, 15) as u8;
                    out.push(q0 | (q1 << 4));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_round_trips_within_block_precision() {
        let v: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        for (dt, tol) in [
            (DType::Q8_0, 0.02),
            (DType::Q4_0, 0.38),
            (DType::Q4_1, 0.21),
        ] {
            let q = quantize(dt, &v).unwrap();
            assert_eq!(q.len(), dt.storage_bytes(64));
            let back = dequantize(dt, &q, 64).unwrap();
            let err = v
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < tol, "{dt}: max err {err}");
        }
        assert!(dequantize(DType::Q8_0, &[0u8; 10], 32).is_err());
    }
}
