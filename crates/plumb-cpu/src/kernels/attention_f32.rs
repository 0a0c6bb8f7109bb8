//! `attention_f32` for many query rows (encoders, prefill; f16 and bf16 widened to it, so their
//! scores are not rounded to the narrow type between the steps). One team task per (batch, head,
//! block of up to [`BLOCK`] query rows):
//! - scores = scale · q·kᵀ by one single-threaded gemm into a scratch block;
//! - mask, causal cut and a stable softmax row by row, in place while the block is in cache;
//! - out = p·v by a second gemm, straight into the output.
//!
//! The composed path runs the same work as five ops (two matmuls, scale, mask add, softmax),
//! each a separate pass over a [b, h, s, t] score tensor with its own hand-off to the team.
//! Causal blocks stop at the last key their last row sees.

use super::attention::at;
use super::matmul::{gemm_block, Dst, Mat};
use plumb_core::math::MulAdd;
use plumb_core::{AttentionArgs, Layout};

/// Query rows per task (a 64 × t block of scores: 64 KiB at t = 256).
const BLOCK: usize = 64;

/// A rank-4 view's [b, h] matrix of rows × last dim as a gemm operand.
fn rows_of(data: &[f32], l: &Layout, b: usize, h: usize, i0: usize) -> Mat<f32> {
    Mat {
        // SAFETY: an Operand's layout addresses only elements inside its data
        ptr: unsafe { data.as_ptr().add(at(l, b, h, i0)) },
        cs: l.strides[3] as isize,
        rs: l.strides[2] as isize,
    }
}

/// A rank-4 operand: its data and a layout that addresses only elements inside it.
pub type Operand<'a> = (&'a [f32], &'a Layout);

/// The attention of q [b, h, s, d] over k, v [b, hkv, t, d] (h a multiple of hkv) with an
/// optional additive mask broadcast to [b, h, s, t], as a contiguous [b, h, s, d].
pub fn attention_f32(
    (qd, ql): Operand<'_>,
    (kd, kl): Operand<'_>,
    (vd, vl): Operand<'_>,
    mask: Option<Operand<'_>>,
    args: AttentionArgs,
) -> Vec<f32> {
    let (b, h, s, d) = (ql.shape[0], ql.shape[1], ql.shape[2], ql.shape[3]);
    let (hkv, t) = (kl.shape[1], kl.shape[2]);
    let len = b * h * s * d;
    if len == 0 || t == 0 {
        // no keys: every output is an empty sum (the composed softmax · v gives zeros too)
        return crate::storage::alloc_out::<f32>(len);
    }
    let rep = h / hkv;
    // causal: row i sees keys 0..=i + offset
    let offset = t.saturating_sub(s);
    let scale = args.scale as f32;
    let mut out = crate::storage::alloc_overwrite::<f32>(len);
    let blocks = s.div_ceil(BLOCK);
    let optr = crate::team::SyncPtr::new(&mut out);
    crate::par::for_each(b * h * blocks, |task| {
        let (bh, i0) = (task / blocks, task % blocks * BLOCK);
        let (bi, hi) = (bh / h, bh % h);
        let kh = hi / rep;
        let rows = BLOCK.min(s - i0);
        // keys any row of this block sees
        let keys = if args.causal {
            (i0 + rows + offset).min(t)
        } else {
            t
        };
        let mut p: Vec<f32> = Vec::with_capacity(rows * keys);
        let qm = rows_of(qd, ql, bi, hi, i0);
        let km = rows_of(kd, kl, bi, kh, 0);
        let kt = Mat {
            cs: km.rs,
            rs: km.cs,
            ..km
        };
        let scores = Dst {
            ptr: p.as_mut_ptr(),
            rs: keys,
            read: false,
            alpha: 0.0,
            beta: scale,
        };
        // SAFETY: q rows i0.. and the first `keys` rows of k lie in their views; p has capacity
        // for rows × keys, every element of which gemm writes (read = false) before set_len
        unsafe {
            gemm_block((rows, keys, d), scores, qm, kt);
            p.set_len(rows * keys);
        }
        let mask_rows = mask.map(|(md, ml)| (md, ml, at(ml, bi, hi, i0)));
        softmax_block(&mut p, keys, mask_rows, i0, args.causal.then_some(offset));
        // SAFETY: rows i0 .. i0 + rows of (batch, head) bh lie inside out and belong to this
        // task only
        let o = unsafe { optr.slice((bh * s + i0) * d, rows * d) };
        let pm = Mat {
            ptr: p.as_ptr(),
            cs: 1,
            rs: keys as isize,
        };
        let dst = Dst {
            ptr: o.as_mut_ptr(),
            rs: d,
            read: false,
            alpha: 0.0,
            beta: 1.0,
        };
        // SAFETY: p is rows × keys, v's first `keys` rows lie in its view, o holds rows × d
        unsafe { gemm_block((rows, d, keys), dst, pm, rows_of(vd, vl, bi, kh, 0)) };
    });
    out
}

/// Where a block's mask rows are: the mask's data, layout and the offset of the block's first
/// row.
type MaskRows<'a> = Option<(&'a [f32], &'a Layout, usize)>;

multiversion!(
    /// Mask, causal cut and softmax of each row of a block of scores, compiled for the CPU's
    /// SIMD level.
    fn softmax_block[](p: &mut [f32], keys: usize, mask: MaskRows<'_>, i0: usize, causal: Option<usize>) = softmax_block_body[] + MulAdd
);

/// Row r (query i0 + r) of `p` (rows of `keys` scores): add the mask, keep the keys the row
/// sees (all, or 0..=i + offset when causal), and replace them with their softmax, the rest
/// with 0. A row whose max is not finite (all masked, a NaN or +∞) becomes NaN, as the composed
/// softmax gives.
#[inline(always)]
fn softmax_block_body<M: MulAdd>(
    p: &mut [f32],
    keys: usize,
    mask: MaskRows<'_>,
    i0: usize,
    causal: Option<usize>,
) {
    for (r, row) in p.chunks_exact_mut(keys).enumerate() {
        let seen = causal.map_or(keys, |off| (i0 + r + off + 1).min(keys));
        let (row, hidden) = row.split_at_mut(seen);
        hidden.fill(0.0);
        if let Some((md, ml, start)) = mask {
            let base = start + r * ml.strides[2];
            match ml.strides[3] {
                0 => row.iter_mut().for_each(|x| *x += md[base]),
                1 => row
                    .iter_mut()
                    .zip(&md[base..base + seen])
                    .for_each(|(x, &m)| *x += m),
                step => row
                    .iter_mut()
                    .zip(md[base..].iter().step_by(step))
                    .for_each(|(x, &m)| *x += m),
            }
        }
        // NaNs skipped: a NaN makes its exponential, the sum and so the whole row NaN
        let m = super::reduce::max_skipping_nan(row);
        if !m.is_finite() {
            row.fill(f32::NAN);
            continue;
        }
        let inv = 1.0 / super::softmax::exp_sum_in_place::<f32, M>(row, m);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
}
