//! Shapes and layouts. Views (reshape, permute, narrow, broadcast, squeeze) change only the
//! [`Layout`]: shape, strides (in elements) and offset (in elements) over shared storage.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layout {
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    pub offset: usize,
}

/// Row-major strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1usize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.saturating_mul(d.max(1));
    }
    strides
}

/// Number of elements of `shape` (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Resolve a possibly negative dim against `rank`.
pub fn resolve_dim(op: &'static str, dim: isize, shape: &[usize]) -> Result<usize> {
    let rank = shape.len() as isize;
    let d = if dim < 0 { dim + rank } else { dim };
    if d < 0 || d >= rank {
        return Err(Error::OutOfRange {
            op,
            what: "dim",
            index: dim as i64,
            bound: shape.len(),
            shape: shape.to_vec(),
        });
    }
    Ok(d as usize)
}

/// The NumPy broadcast of two shapes.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::shape(op, a, b, "shapes do not broadcast")),
        };
    }
    Ok(out)
}

impl Layout {
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when elements are laid out row-major without gaps (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Contiguous and starting at the storage's first element: the layout a kernel that writes
    /// whole rows of a fresh buffer assumes.
    pub fn is_contiguous_from_start(&self) -> bool {
        self.offset == 0 && self.is_contiguous()
    }

    /// Storage index (in elements) one past the last element this view touches.
    pub fn max_storage_index(&self) -> usize {
        if self.numel() == 0 {
            return self.offset;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&d, &s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// Storage offsets of every element in row-major order.
    pub fn offsets(&self) -> StridedIter<'_> {
        StridedIter::new(self)
    }

    /// Reshape a contiguous layout; `None` when the view is not contiguous (copy first).
    pub fn reshape(&self, shape: &[usize]) -> Result<Option<Layout>> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                &self.shape,
                shape,
                "element counts differ",
            ));
        }
        if !self.is_contiguous() {
            return Ok(None);
        }
        Ok(Some(Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: self.offset,
        }))
    }

    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if dims.len() != rank {
            return Err(Error::shape(
                "permute",
                &self.shape,
                dims,
                "permutation rank",
            ));
        }
        for &d in dims {
            if d >= rank || seen[d] {
                return Err(Error::invalid(
                    "permute",
                    format!("{dims:?} is not a permutation of 0..{rank}"),
                ));
            }
            seen[d] = true;
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout> {
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        if a >= dims.len() || b >= dims.len() {
            return Err(Error::OutOfRange {
                op: "transpose",
                what: "dim",
                index: a.max(b) as i64,
                bound: dims.len(),
                shape: self.shape.clone(),
            });
        }
        dims.swap(a, b);
        self.permute(&dims)
    }

    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        if dim >= self.rank() {
            return Err(Error::OutOfRange {
                op: "narrow",
                what: "dim",
                index: dim as i64,
                bound: self.rank(),
                shape: self.shape.clone(),
            });
        }
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::OutOfRange {
                op: "narrow",
                what: "end",
                index: start.saturating_add(len) as i64,
                bound: size,
                shape: self.shape.clone(),
            });
        }
        let mut out = self.clone();
        out.shape[dim] = len;
        if len > 0 {
            out.offset += start * self.strides[dim];
        }
        Ok(out)
    }

    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        if shape.len() < self.rank() {
            return Err(Error::shape(
                "broadcast_to",
                &self.shape,
                shape,
                "target has lower rank",
            ));
        }
        let extra = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for i in 0..shape.len() {
            if i < extra {
                continue;
            }
            let (d, s) = (self.shape[i - extra], self.strides[i - extra]);
            if d == shape[i] {
                strides[i] = s;
            } else if d == 1 {
                strides[i] = 0;
            } else {
                return Err(Error::shape(
                    "broadcast_to",
                    &self.shape,
                    shape,
                    "dims differ and are not 1",
                ));
            }
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    pub fn squeeze(&self, dim: usize) -> Result<Layout> {
        if dim >= self.rank() || self.shape[dim] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("dim {dim} of shape {:?} is not of size 1", self.shape),
            ));
        }
        let mut out = self.clone();
        out.shape.remove(dim);
        out.strides.remove(dim);
        Ok(out)
    }

    pub fn unsqueeze(&self, dim: usize) -> Result<Layout> {
        if dim > self.rank() {
            return Err(Error::OutOfRange {
                op: "unsqueeze",
                what: "dim",
                index: dim as i64,
                bound: self.rank() + 1,
                shape: self.shape.clone(),
            });
        }
        let mut out = self.clone();
        let stride = if dim < self.rank() {
            self.strides[dim] * self.shape[dim]
        } else {
            1
        };
        out.shape.insert(dim, 1);
        out.strides.insert(dim, stride);
        Ok(out)
    }
}

/// Iterator over the storage offsets of a layout in row-major order.
pub struct StridedIter<'a> {
    layout: &'a Layout,
    index: Vec<usize>,
    next: Option<usize>,
}

impl<'a> StridedIter<'a> {
    fn new(layout: &'a Layout) -> Self {
        let next = (layout.numel() > 0).then_some(layout.offset);
        StridedIter {
            layout,
            index: vec![0; layout.rank()],
            next,
        }
    }
}

impl Iterator for StridedIter<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let cur = self.next?;
        let l = self.layout;
        let mut off = cur;
        let mut d = l.rank();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            self.index[d] += 1;
            off += l.strides[d];
            if self.index[d] < l.shape[d] {
                self.next = Some(off);
                break;
            }
            off -= l.strides[d] * l.shape[d];
            self.index[d] = 0;
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_metadata() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert!(l.is_contiguous());
        let t = l.transpose(1, 2).unwrap();
        assert_eq!(t.shape, vec![2, 4, 3]);
        assert!(!t.is_contiguous());
        let offs: Vec<usize> = t.offsets().take(4).collect();
        assert_eq!(offs, vec![0, 4, 8, 1]);
        let n = l.narrow(2, 1, 2).unwrap();
        assert_eq!(n.offsets().collect::<Vec<_>>()[..3], [1, 2, 5]);
        let b = Layout::contiguous(&[3, 1])
            .broadcast_to(&[2, 3, 4])
            .unwrap();
        assert_eq!(b.strides, vec![0, 1, 0]);
        assert_eq!(b.offsets().count(), 24);
        assert!(broadcast_shapes("t", &[2, 3], &[4, 3]).is_err());
        assert_eq!(
            broadcast_shapes("t", &[2, 1, 3], &[4, 1]).unwrap(),
            vec![2, 4, 3]
        );
        let e = Layout::contiguous(&[0, 3]);
        assert_eq!(e.offsets().count(), 0);
        let s = Layout::contiguous(&[]);
        assert_eq!(s.offsets().collect::<Vec<_>>(), vec![0]);
    }
}
