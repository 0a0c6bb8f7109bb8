//! The `Strided` kernel argument: a view's shape, strides and offset (in elements), with
//! adjacent dims merged where the memory is contiguous across them, so most views reach the
//! kernels as rank 1 or 2.

use plumb_core::{Error, Layout, Result};

/// Highest rank a kernel argument holds (after merging); matches MAX_RANK in common.cuh.
pub const MAX_RANK: usize = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Strided {
    pub shape: [i64; MAX_RANK],
    pub stride: [i64; MAX_RANK],
    pub offset: i64,
    pub rank: i32,
    _pad: i32,
}

impl Strided {
    /// `layout` as a kernel argument, dims merged; `op` names the op in the error for a view
    /// whose rank stays above [`MAX_RANK`].
    pub fn of(layout: &Layout, op: &'static str) -> Result<Self> {
        let (shape, strides) = merge(&layout.shape, &layout.strides);
        Self::build(&shape, &strides, layout.offset, op)
    }

    /// The dims exactly as given (kernels that index per dim, such as gather).
    pub fn exact(
        shape: &[usize],
        strides: &[usize],
        offset: usize,
        op: &'static str,
    ) -> Result<Self> {
        Self::build(shape, strides, offset, op)
    }

    fn build(shape: &[usize], strides: &[usize], offset: usize, op: &'static str) -> Result<Self> {
        if shape.len() > MAX_RANK {
            return Err(Error::invalid(
                op,
                format!(
                    "the CUDA kernels take views of rank ≤ {MAX_RANK} after merging contiguous \
                     dims; this view has shape {shape:?} and strides {strides:?} (make it \
                     contiguous first)"
                ),
            ));
        }
        let mut s = Strided {
            offset: offset as i64,
            rank: shape.len().max(1) as i32,
            ..Default::default()
        };
        s.shape[0] = 1;
        for (i, (&d, &st)) in shape.iter().zip(strides).enumerate() {
            s.shape[i] = d as i64;
            s.stride[i] = st as i64;
        }
        Ok(s)
    }
}

/// Drop size-1 dims and merge neighbours whose strides make them one run of memory.
pub fn merge(shape: &[usize], strides: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut sh: Vec<usize> = Vec::new();
    let mut st: Vec<usize> = Vec::new();
    for (&d, &s) in shape.iter().zip(strides) {
        if d == 1 {
            continue;
        }
        let n = sh.len();
        if n > 0 && st[n - 1] == s * d {
            sh[n - 1] *= d;
            st[n - 1] = s;
            continue;
        }
        sh.push(d);
        st.push(s);
    }
    if sh.is_empty() {
        sh.push(1);
        st.push(1);
    }
    (sh, st)
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn merges_contiguous_runs_and_keeps_the_rest() {
        assert_eq!(merge(&[2, 3, 4], &[12, 4, 1]), (vec![24], vec![1]));
        // a transposed pair stays two dims
        assert_eq!(merge(&[3, 4], &[1, 3]), (vec![3, 4], vec![1, 3]));
        // size-1 dims vanish, broadcast dims stay
        assert_eq!(merge(&[1, 5, 1, 4], &[0, 4, 9, 1]), (vec![20], vec![1]));
        assert_eq!(merge(&[5, 4], &[0, 1]), (vec![5, 4], vec![0, 1]));
        assert_eq!(merge(&[1, 1], &[3, 7]), (vec![1], vec![1]));
        // narrowed rows: stride 8 over a row of 4 is not one run
        assert_eq!(merge(&[3, 4], &[8, 1]), (vec![3, 4], vec![8, 1]));
    }
}
