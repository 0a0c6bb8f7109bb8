//! Reductions over one dim.

use super::{buf, codec, lay, out_buf, params, per_word, u32_of};
use crate::kernels::{Family, KernelSpec};
use crate::launch::{split_groups, Ctx};
use plumb_core::{DType, ReduceOp, Result, StorageRef, View};
use std::sync::Arc;

pub fn reduce(
    ctx: &Ctx,
    op: ReduceOp,
    x: View,
    dim: usize,
    index_dtype: DType,
) -> Result<StorageRef> {
    let name = op.name();
    let c = codec(ctx, x.dtype, name)?;
    let (out_dt, oc, tag) = if op == ReduceOp::ArgMax {
        (
            index_dtype,
            codec(ctx, index_dtype, name)?,
            format!("{}_{}", x.dtype.name(), index_dtype.name()),
        )
    } else {
        (x.dtype, c, x.dtype.name().to_string())
    };
    let mut oshape = x.shape().to_vec();
    let len = oshape.get(dim).copied().unwrap_or(1);
    let stride = x.layout.strides.get(dim).copied().unwrap_or(0);
    if let Some(d) = oshape.get_mut(dim) {
        *d = 1;
    }
    let n: usize = oshape.iter().product();
    let out = ctx.alloc(out_dt.storage_bytes(n), name)?;
    let p = params(
        name,
        [
            u32_of(len, name, "dim")?,
            u32_of(stride, name, "stride")?,
            0,
            0,
        ],
        n,
        &oshape,
        &[lay(x.layout)],
    )?;
    // the output shape differs from the input's, so the input is always indexed by strides
    let spec = KernelSpec::new(Family::Reduce, name, &tag, c, oc, true);
    let (gx, gy) = split_groups(n.div_ceil(per_word(out_dt)) as u64);
    ctx.run(
        &spec,
        &p,
        &[buf(ctx, &x, name)?, out_buf(ctx, &out, name)?],
        (gx, gy, 1),
    )?;
    Ok(Arc::new(out))
}
