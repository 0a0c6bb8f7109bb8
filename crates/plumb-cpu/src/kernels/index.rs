//! `index_select_{dtype}` and `gather_{dtype}`. Every id is checked: an id outside
//! `0..size` is `Error::OutOfRange` naming the op, the id and the shape.

use crate::storage::{contiguous, raw_slice, unsupported, Elem};
use plumb_core::{DType, Error, Result, View};

/// The ids of an index view as i64 (i32, i64 or u8 ids).
pub fn ids_i64(op: &'static str, ids: &View) -> Result<Vec<i64>> {
    Ok(match ids.dtype {
        DType::I32 => contiguous::<i32>(op, ids)?
            .iter()
            .map(|&v| v as i64)
            .collect(),
        DType::I64 => contiguous::<i64>(op, ids)?.into_owned(),
        DType::U8 => contiguous::<u8>(op, ids)?
            .iter()
            .map(|&v| v as i64)
            .collect(),
        other => return Err(unsupported(op, other, "ids must be i32, i64 or u8")),
    })
}

fn check(op: &'static str, id: i64, size: usize, shape: &[usize]) -> Result<usize> {
    if id < 0 || id as u64 >= size as u64 {
        return Err(Error::OutOfRange {
            op,
            what: "id",
            index: id,
            bound: size,
            shape: shape.to_vec(),
        });
    }
    Ok(id as usize)
}

/// `index_select_{dtype}`: entries of `x` along `dim` picked by 1-D `ids`.
pub fn index_select_plain<T: Elem>(x: &View, ids: &View, dim: usize) -> Result<Vec<T>> {
    let ids = ids_i64("index_select", ids)?;
    let shape = x.shape();
    let size = shape[dim];
    let checked: Vec<usize> = ids
        .iter()
        .map(|&id| check("index_select", id, size, shape))
        .collect::<Result<_>>()?;
    let src = contiguous::<T>("index_select", x)?;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let picked = checked.len() * inner;
    // a reused buffer (fresh pages fault in one at a time), filled by the team in tasks of
    // whole output rows, at least 16 Ki values each
    let mut out = crate::storage::alloc_overwrite::<T>(outer * picked);
    if inner == 0 {
        return Ok(out);
    }
    let rows = (1usize << 14).div_ceil(inner);
    crate::par::chunks_mut(&mut out, rows * inner, |task, dst| {
        for (r, d) in dst.chunks_exact_mut(inner).enumerate() {
            let row = task * rows + r;
            let (o, id) = (row / checked.len(), checked[row % checked.len()]);
            let at = o * size * inner + id * inner;
            d.copy_from_slice(&src[at..at + inner]);
        }
    });
    Ok(out)
}

/// `gather_{dtype}` (torch.gather): out[i][j][k] = x[i][ids[i][j][k]][k] for dim 1.
pub fn gather_plain<T: Elem>(x: &View, ids_view: &View, dim: usize) -> Result<Vec<T>> {
    let ids = ids_i64("gather", ids_view)?;
    let data = raw_slice::<T>("gather", x)?;
    let (xs, st) = (x.shape(), &x.layout.strides);
    let ishape = ids_view.shape();
    let rank = ishape.len();
    let mut idx = vec![0usize; rank];
    let mut out = Vec::with_capacity(ids.len());
    for &id in &ids {
        let id = check("gather", id, xs[dim], xs)?;
        let mut off = x.layout.offset + id * st[dim];
        for d in 0..rank {
            if d != dim {
                off += idx[d] * st[d];
            }
        }
        out.push(data[off]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < ishape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}
