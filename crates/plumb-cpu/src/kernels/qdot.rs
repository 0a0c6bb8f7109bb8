//! Block dot products for quantized matmul with few activation rows (decoding): each task takes
//! a range of weight rows, dequantizes one 32-element block at a time into registers and dots it
//! with every activation row (f32 accumulation, no approximation beyond the weights' own).

use plumb_core::DType;
use rayon::prelude::*;

#[inline]
fn f16_le(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Σ q·x over one q4 block's 16 packed bytes (low nibbles → x[0..16], high → x[16..32]), with
/// the nibbles taken as they are (the caller applies the −8 offset or the min).
#[inline(always)]
fn dot_q4(qs: &[u8], x: &[f32]) -> f32 {
    let mut lo = [0f32; 16];
    let mut hi = [0f32; 16];
    for j in 0..16 {
        lo[j] = (qs[j] & 0x0f) as f32 * x[j];
        hi[j] = (qs[j] >> 4) as f32 * x[j + 16];
    }
    let mut s = 0f32;
    for j in 0..16 {
        s += lo[j] + hi[j];
    }
    s
}

#[inline(always)]
fn dot_q8(qs: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    for j in 0..32 {
        acc[j] = (qs[j] as i8) as f32 * x[j];
    }
    acc.iter().sum()
}

/// Dot of one quantized weight row with one f32 activation row (`xsum[b]` = Σ x over block b).
#[inline]
pub fn dot_row(dt: DType, wrow: &[u8], x: &[f32], xsum: &[f32]) -> f32 {
    let bb = dt.block_bytes();
    let mut s = 0f32;
    for (b, blk) in wrow.chunks_exact(bb).enumerate() {
        let xb = &x[b * 32..b * 32 + 32];
        s += match dt {
            DType::Q4_0 => f16_le(blk, 0) * (dot_q4(&blk[2..18], xb) - 8.0 * xsum[b]),
            DType::Q4_1 => f16_le(blk, 0) * dot_q4(&blk[4..20], xb) + f16_le(blk, 2) * xsum[b],
            _ => f16_le(blk, 0) * dot_q8(&blk[2..34], xb),
        };
    }
    s
}

/// out [rows, n] = x [rows, k] × wᵀ for quantized w [n, k].
pub fn qmatmul_rows(xs: &[f32], wb: &[u8], dt: DType, rows: usize, n: usize, k: usize) -> Vec<f32> {
    let row_bytes = dt.storage_bytes(k);
    let nb = k / 32;
    let xsum: Vec<f32> = xs.chunks_exact(32).map(|c| c.iter().sum::<f32>()).collect();
    // transposed result [n, rows], computed in parallel over weight rows
    let mut out_t = vec![0f32; n * rows];
    let per = 64;
    out_t
        .par_chunks_mut(rows * per)
        .zip(wb.par_chunks(row_bytes * per))
        .for_each(|(o, w)| {
            for (o, wrow) in o.chunks_mut(rows).zip(w.chunks_exact(row_bytes)) {
                for (r, o) in o.iter_mut().enumerate() {
                    *o = dot_row(
                        dt,
                        wrow,
                        &xs[r * k..(r + 1) * k],
                        &xsum[r * nb..(r + 1) * nb],
                    );
                }
            }
        });
    if rows == 1 {
        return out_t;
    }
    let mut out = vec![0f32; rows * n];
    for j in 0..n {
        for r in 0..rows {
            out[r * n + j] = out_t[j * rows + r];
        }
    }
    out
}
