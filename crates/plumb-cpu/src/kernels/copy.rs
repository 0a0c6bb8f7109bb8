//! Strided → contiguous copies (`copy`, and the gather every other kernel uses for
//! non-contiguous inputs), `full`, and `cat`.

use crate::storage::{contiguous, Elem};
use plumb_core::{Layout, Result, View};

/// Copy the elements of `layout` over `src` into `dst` (row-major, `dst.len() == numel`).
/// The last dim is the inner loop (memcpy when its stride is 1, a fill when 0).
pub fn strided_copy<T: Copy + Send + Sync>(src: &[T], layout: &Layout, dst: &mut [T]) {
    let n = layout.numel();
    if n == 0 {
        return;
    }
    if layout.rank() == 0 {
        dst[0] = src[layout.offset];
        return;
    }
    let inner = *layout.shape.last().unwrap_or(&1);
    let stride = *layout.strides.last().unwrap_or(&1);
    let r = layout.rank();
    if r >= 2 && stride > 1 && layout.shape[r - 2] > 1 && inner > 1 {
        return tiled_copy(src, layout, dst);
    }
    let rows_per = super::rows_per_task(inner);
    crate::par::chunks_mut(dst, inner * rows_per, |task, chunk| {
        for (i, row) in chunk.chunks_mut(inner).enumerate() {
            let off = crate::storage::row_offset(layout, task * rows_per + i);
            copy_row(src, off, stride, row);
        }
    });
}

/// Tile edge of the blocked copy (a transposed view reads and writes 32×32 tiles, so both
/// sides stay in cache).
const TILE: usize = 32;

/// Copy a view whose last dim is strided (e.g. a transpose) tile by tile over the last two dims.
/// Each task takes a band of whole rows (a multiple of TILE, about `PAR_CHUNK` elements),
/// counted through all the matrices, so one big matrix and many small ones both split evenly.
fn tiled_copy<T: Copy + Send + Sync>(src: &[T], layout: &Layout, dst: &mut [T]) {
    let rank = layout.rank();
    let (rows, cols) = (layout.shape[rank - 2], layout.shape[rank - 1]);
    let (sr, sc) = (layout.strides[rank - 2], layout.strides[rank - 1]);
    // the outer dims address whole [rows, cols] matrices
    let outer = Layout {
        shape: layout.shape[..rank - 1].to_vec(),
        strides: layout.strides[..rank - 1].to_vec(),
        offset: layout.offset,
    };
    let rows_per = super::rows_per_task(cols).div_ceil(TILE) * TILE;
    crate::par::chunks_mut(dst, rows_per * cols, |task, band| {
        let first = task * rows_per;
        let end = first + band.len() / cols;
        // tiles of up to TILE rows, none crossing from one matrix into the next
        let mut g = first;
        while g < end {
            let (mat, i0) = (g / rows, g % rows);
            let n = TILE.min(rows - i0).min(end - g);
            // offset of matrix `mat` (row_offset walks every dim of `outer` but its last)
            let base = crate::storage::row_offset(&outer, mat);
            let tile = &mut band[(g - first) * cols..(g - first + n) * cols];
            for j0 in (0..cols).step_by(TILE) {
                let j1 = (j0 + TILE).min(cols);
                for (i, d) in tile.chunks_mut(cols).enumerate() {
                    let s = base + (i0 + i) * sr;
                    for (j, o) in d[j0..j1].iter_mut().enumerate() {
                        *o = src[s + (j0 + j) * sc];
                    }
                }
            }
            g += n;
        }
    });
}

#[inline]
fn copy_row<T: Copy>(src: &[T], off: usize, stride: usize, row: &mut [T]) {
    match stride {
        1 => row.copy_from_slice(&src[off..off + row.len()]),
        0 => row.fill(src[off]),
        s => {
            for (j, o) in row.iter_mut().enumerate() {
                *o = src[off + j * s];
            }
        }
    }
}

/// `copy_{dtype}`: a contiguous copy of any view.
/// `src` (contiguous, `at`'s shape) into the elements of `dst` that `at` addresses; an error,
/// not a panic, where `at` reaches past `dst`.
pub fn write_strided<T: Copy>(src: &[T], at: &Layout, dst: &mut [T]) -> Result<()> {
    let rank = at.rank();
    let (last, stride) = match rank {
        0 => (1, 1),
        _ => (at.shape[rank - 1], at.strides[rank - 1]),
    };
    if last == 0 {
        return Ok(());
    }
    let dst_len = dst.len();
    for (r, row) in src.chunks_exact(last).enumerate() {
        let off = crate::storage::row_offset(at, r);
        let end = off + (last - 1) * stride + 1;
        let d = dst.get_mut(off..end).ok_or_else(|| {
            crate::storage::device_err(
                "write_slice",
                format!(
                    "region {:?} (strides {:?}, offset {}) reaches past the destination's {dst_len} elements",
                    at.shape, at.strides, at.offset
                ),
            )
        })?;
        if stride == 1 {
            d.copy_from_slice(row);
        } else {
            for (j, &v) in row.iter().enumerate() {
                d[j * stride] = v;
            }
        }
    }
    Ok(())
}

pub fn copy_plain<T: Elem>(x: &View) -> Result<Vec<T>> {
    Ok(contiguous::<T>("copy", x)?.into_owned())
}

/// `cat_{dtype}`: concatenate along `dim`.
pub fn cat_plain<T: Elem>(xs: &[View], dim: usize) -> Result<Vec<T>> {
    let parts: Vec<_> = xs
        .iter()
        .map(|v| contiguous::<T>("cat", v))
        .collect::<Result<_>>()?;
    let Some(first) = xs.first() else {
        return Ok(Vec::new());
    };
    let shape = first.shape();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let widths: Vec<usize> = xs.iter().map(|v| v.shape()[dim] * inner).collect();
    let total: usize = widths.iter().sum();
    let mut out = Vec::with_capacity(outer * total);
    for o in 0..outer {
        for (p, &w) in parts.iter().zip(&widths) {
            out.extend_from_slice(&p[o * w..(o + 1) * w]);
        }
    }
    Ok(out)
}

/// `cat_{q…}`: concatenate quantized tensors along a dim other than the last (whole blocks).
pub fn cat_quant(xs: &[View], dim: usize) -> Result<Vec<u8>> {
    let Some(first) = xs.first() else {
        return Ok(Vec::new());
    };
    let (dt, shape) = (first.dtype, first.shape());
    if dim + 1 >= shape.len() {
        return Err(plumb_core::Error::invalid(
            "cat",
            format!("{dt} tensors cannot be concatenated along their last dim (blocks of 32)"),
        ));
    }
    let parts: Vec<std::borrow::Cow<[u8]>> = xs
        .iter()
        .map(|v| super::qmatmul::quant_bytes("cat", v))
        .collect::<Result<_>>()?;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let widths: Vec<usize> = xs
        .iter()
        .map(|v| dt.storage_bytes(v.shape()[dim] * inner))
        .collect();
    let mut out = Vec::with_capacity(outer * widths.iter().sum::<usize>());
    for o in 0..outer {
        for (p, &w) in parts.iter().zip(&widths) {
            out.extend_from_slice(&p[o * w..(o + 1) * w]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element `i` of `layout`, one index at a time.
    fn at(layout: &Layout, mut i: usize) -> usize {
        let mut off = layout.offset;
        for d in (0..layout.rank()).rev() {
            off += (i % layout.shape[d]) * layout.strides[d];
            i /= layout.shape[d];
        }
        off
    }

    #[test]
    fn strided_copies_match_indexing_one_element_at_a_time() {
        // transposes (the tiled path, with tasks crossing from one matrix into the next where
        // the rows are short), broadcasts and plain row copies
        let cases: [(&[usize], &[usize]); 6] = [
            (&[70, 45], &[1, 0]),
            (&[3, 45, 70], &[0, 2, 1]),
            (&[700, 37, 3], &[0, 2, 1]),
            (&[5, 1000, 64], &[0, 2, 1]),
            (&[64, 3, 700], &[1, 0, 2]),
            (&[2, 33, 129], &[2, 0, 1]),
        ];
        for (shape, perm) in cases {
            let n: usize = shape.iter().product();
            let src: Vec<u32> = (0..n as u32).collect();
            let l = Layout::contiguous(shape).permute(perm).unwrap();
            let mut dst = vec![u32::MAX; n];
            strided_copy(&src, &l, &mut dst);
            for (i, &v) in dst.iter().enumerate() {
                assert_eq!(v, src[at(&l, i)], "{shape:?} {perm:?} element {i}");
            }
        }
    }
}
