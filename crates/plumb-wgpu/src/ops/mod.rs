//! Launchers: turn views into parameter blocks and dispatches. One module per op family.

pub mod elementwise;
pub mod index;
pub mod matmul;
pub mod movement;
pub mod nn;
pub mod reduce;

use crate::kernels::compute_codec;
use crate::launch::Ctx;
use crate::pool::WgpuStorage;
use plumb_core::{DType, Error, Layout, Result, View};

/// Largest rank a parameter block holds.
pub const MAX_RANK: usize = 8;

/// Elements per 32-bit storage word (64-bit dtypes: one element per 8-byte word).
pub fn per_word(dt: DType) -> usize {
    match dt.size() {
        Some(1) => 4,
        Some(2) => 2,
        _ => 1,
    }
}

pub fn u32_of(v: usize, op: &'static str, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::invalid(
            op,
            format!("{what} {v} does not fit the 32-bit indices of the wgpu kernels"),
        )
    })
}

/// The device buffer behind a view.
pub fn buf<'a>(ctx: &Ctx, v: &View<'a>, op: &'static str) -> Result<&'a wgpu::Buffer> {
    v.storage
        .as_any()
        .downcast_ref::<WgpuStorage>()
        .and_then(|s| s.buffer())
        .ok_or_else(|| {
            Error::backend(
                &ctx.id,
                op,
                "the tensor's storage does not belong to a wgpu device",
            )
        })
}

/// The buffer of a storage this backend just made.
pub fn out_buf<'a>(ctx: &Ctx, s: &'a WgpuStorage, op: &'static str) -> Result<&'a wgpu::Buffer> {
    s.buffer()
        .ok_or_else(|| Error::backend(&ctx.id, op, "storage already released"))
}

/// The standard parameter block (see kernels/common.wgsl): 4 op scalars, element count, rank,
/// shape, then one layout block (offset, strides) per input.
pub fn params(
    op: &'static str,
    extras: [u32; 4],
    n: usize,
    shape: &[usize],
    layouts: &[(usize, &[usize])],
) -> Result<Vec<u32>> {
    if shape.len() > MAX_RANK {
        return Err(Error::invalid(
            op,
            format!(
                "rank {} is above the {MAX_RANK} dims the wgpu kernels take",
                shape.len()
            ),
        ));
    }
    let mut p = Vec::with_capacity(14 + 9 * layouts.len());
    p.extend_from_slice(&extras);
    p.push(u32_of(n, op, "element count")?);
    p.push(shape.len() as u32);
    for i in 0..MAX_RANK {
        p.push(u32_of(shape.get(i).copied().unwrap_or(1), op, "dim")?);
    }
    for (offset, strides) in layouts {
        p.push(u32_of(*offset, op, "offset")?);
        for i in 0..MAX_RANK {
            p.push(u32_of(strides.get(i).copied().unwrap_or(0), op, "stride")?);
        }
    }
    Ok(p)
}

/// Shorthand for one view's layout block.
pub fn lay(l: &Layout) -> (usize, &[usize]) {
    (l.offset, &l.strides)
}

/// The compute codec for `dt` on this device, or the reason it cannot compute there.
pub fn codec(ctx: &Ctx, dt: DType, op: &str) -> Result<&'static str> {
    let unsupported = |reason: &str| Error::UnsupportedDType {
        op: op.to_string(),
        dtype: dt,
        device: ctx.id.clone(),
        reason: reason.to_string(),
    };
    match dt {
        DType::F16 if !ctx.has_f16 => Err(unsupported("the adapter has no SHADER_F16")),
        DType::I64 if !ctx.has_i64 => Err(unsupported("the adapter has no SHADER_INT64")),
        DType::F64 => Err(unsupported(
            "f64 compute kernels are not provided on wgpu (casts, copies and indexing only)",
        )),
        _ => compute_codec(dt, ctx.has_f16)
            .ok_or_else(|| unsupported("quantized dtypes are storage only")),
    }
}

/// True when every view is contiguous (offsets may differ).
pub fn all_contiguous(vs: &[&View]) -> bool {
    vs.iter().all(|v| v.layout.is_contiguous())
}
