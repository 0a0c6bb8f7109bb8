//! `rope_{dtype}`: rotary embeddings on x [batch, heads, seq, head_dim] with cos/sin
//! [seq, head_dim/2], computed in the accumulator type.
//!
//! - rotate-half: pairs (i, i + d/2): y_i = x_i·cos_i − x_{i+d/2}·sin_i,
//!   y_{i+d/2} = x_{i+d/2}·cos_i + x_i·sin_i
//! - interleaved: pairs (2i, 2i + 1) with the same formulas.

use super::Float;
use crate::storage::contiguous;
use plumb_core::{Result, View};

pub fn rope_float<T: Float>(x: &View, cos: &View, sin: &View, interleaved: bool) -> Result<Vec<T>> {
    let src = contiguous::<T>("rope", x)?;
    let c = contiguous::<T>("rope", cos)?;
    let s = contiguous::<T>("rope", sin)?;
    let shape = x.shape();
    let (seq, d) = (shape[2], shape[3]);
    let half = d / 2;
    let mut out = vec![T::default(); src.len()];
    if d == 0 || seq == 0 {
        return Ok(out);
    }
    // whole (batch, head) items per task, at least PAR_CHUNK elements each (a decode step's few
    // heads run inline on the caller)
    let per = seq * d * (super::PAR_CHUNK / (seq * d)).max(1);
    crate::par::zip_chunks_mut(&mut out, per, &src, per, |o, xi| {
        // chunks start on a (batch, head) boundary, so row r of a chunk is position r % seq
        for (r, (or, xr)) in o.chunks_mut(d).zip(xi.chunks(d)).enumerate() {
            let t = r % seq;
            let (cr, sr) = (&c[t * half..(t + 1) * half], &s[t * half..(t + 1) * half]);
            for i in 0..half {
                let (ci, si) = (cr[i].to_acc(), sr[i].to_acc());
                let (a, b) = if interleaved {
                    (2 * i, 2 * i + 1)
                } else {
                    (i, i + half)
                };
                let (xa, xb) = (xr[a].to_acc(), xr[b].to_acc());
                or[a] = T::from_acc(xa * ci - xb * si);
                or[b] = T::from_acc(xb * ci + xa * si);
            }
        }
    });
    Ok(out)
}
