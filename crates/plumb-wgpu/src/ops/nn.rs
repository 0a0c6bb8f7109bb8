//! softmax, layer/RMS norm, rope: row-wise float ops with f32 accumulation.

use super::{buf, codec, lay, out_buf, params, per_word, u32_of};
use crate::kernels::{Family, KernelSpec};
use crate::launch::{groups_1d, split_groups, Ctx};
use crate::ops::elementwise;
use plumb_core::{DType, Error, Layout, Result, StorageRef, View};
use std::sync::Arc;

fn float_only(ctx: &Ctx, x: &View, op: &'static str) -> Result<&'static str> {
    if !x.dtype.is_float() {
        return Err(Error::UnsupportedDType {
            op: op.into(),
            dtype: x.dtype,
            device: ctx.id.clone(),
            reason: "a floating dtype is needed".into(),
        });
    }
    codec(ctx, x.dtype, op)
}

/// Rows of a packed dtype whose length splits storage words are computed in f32 and cast back
/// (each output word then belongs to one workgroup).
fn needs_f32_rows(dt: DType, len: usize) -> bool {
    per_word(dt) > 1 && !len.is_multiple_of(per_word(dt))
}

fn via_f32(
    ctx: &Ctx,
    xs: &[View],
    f: impl Fn(&[View]) -> Result<StorageRef>,
) -> Result<StorageRef> {
    let dt = xs[0].dtype;
    let up: Vec<(StorageRef, Layout)> = xs
        .iter()
        .map(|v| {
            Ok((
                elementwise::cast(ctx, *v, DType::F32)?,
                Layout::contiguous(v.shape()),
            ))
        })
        .collect::<Result<_>>()?;
    let views: Vec<View> = up
        .iter()
        .map(|(s, l)| View {
            storage: s.as_ref(),
            layout: l,
            dtype: DType::F32,
        })
        .collect();
    let y = f(&views)?;
    let l = Layout::contiguous(xs[0].shape());
    elementwise::cast(
        ctx,
        View {
            storage: y.as_ref(),
            layout: &l,
            dtype: DType::F32,
        },
        dt,
    )
}

pub fn softmax(ctx: &Ctx, x: View, log: bool) -> Result<StorageRef> {
    let op = if log { "log_softmax" } else { "softmax" };
    let c = float_only(ctx, &x, op)?;
    let len = x.shape().last().copied().unwrap_or(1);
    if needs_f32_rows(x.dtype, len) {
        return via_f32(ctx, &[x], |v| softmax(ctx, v[0], log));
    }
    let n = x.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op)?;
    if n == 0 {
        return Ok(Arc::new(out));
    }
    let p = params(
        op,
        [u32_of(len, op, "row")?, 0, 0, 0],
        n,
        x.shape(),
        &[lay(x.layout)],
    )?;
    let spec = KernelSpec::new(
        Family::Softmax,
        op,
        x.dtype.name(),
        c,
        c,
        !x.layout.is_contiguous(),
    );
    let (gx, gy) = split_groups((n / len) as u64);
    ctx.run(
        &spec,
        &p,
        &[buf(ctx, &x, op)?, out_buf(ctx, &out, op)?],
        (gx, gy, 1),
    )?;
    Ok(Arc::new(out))
}

/// A [last]-shaped parameter's layout broadcast over x's shape.
fn broadcast_last(p: &View, rank: usize) -> (usize, Vec<usize>) {
    let mut s = vec![0; rank];
    if let (Some(last), Some(&st)) = (s.last_mut(), p.layout.strides.first()) {
        *last = st;
    }
    (p.layout.offset, s)
}

pub fn norm(
    ctx: &Ctx,
    op: &'static str,
    x: View,
    w: Option<View>,
    b: Option<View>,
    eps: f64,
) -> Result<StorageRef> {
    let c = float_only(ctx, &x, op)?;
    let len = x.shape().last().copied().unwrap_or(1);
    if needs_f32_rows(x.dtype, len) {
        let mut xs = vec![x];
        xs.extend(w);
        xs.extend(b);
        let (hw, hb) = (w.is_some(), b.is_some());
        return via_f32(ctx, &xs, |v| {
            let wv = hw.then(|| v[1]);
            let bv = hb.then(|| v[if hw { 2 } else { 1 }]);
            norm(ctx, op, v[0], wv, bv, eps)
        });
    }
    let n = x.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), op)?;
    if n == 0 {
        return Ok(Arc::new(out));
    }
    let rank = x.layout.rank();
    let wl = w
        .map(|v| broadcast_last(&v, rank))
        .unwrap_or((0, vec![0; rank]));
    let bl = b
        .map(|v| broadcast_last(&v, rank))
        .unwrap_or((0, vec![0; rank]));
    let p = params(
        op,
        [
            u32_of(len, op, "row")?,
            (eps as f32).to_bits(),
            w.is_some() as u32,
            b.is_some() as u32,
        ],
        n,
        x.shape(),
        &[lay(x.layout), (wl.0, &wl.1), (bl.0, &bl.1)],
    )?;
    // the weight and bias are broadcast, so the strided variant is always used
    let spec = KernelSpec::new(Family::Norm, op, x.dtype.name(), c, c, true);
    let xb = buf(ctx, &x, op)?;
    let wb = match &w {
        Some(v) => buf(ctx, v, op)?,
        None => xb,
    };
    let bb = match &b {
        Some(v) => buf(ctx, v, op)?,
        None => xb,
    };
    let (gx, gy) = split_groups((n / len) as u64);
    ctx.run(
        &spec,
        &p,
        &[xb, wb, bb, out_buf(ctx, &out, op)?],
        (gx, gy, 1),
    )?;
    Ok(Arc::new(out))
}

pub fn rope(ctx: &Ctx, x: View, cos: View, sin: View, interleaved: bool) -> Result<StorageRef> {
    let c = float_only(ctx, &x, "rope")?;
    if x.layout.rank() != 4 || cos.layout.rank() != 2 || sin.layout.rank() != 2 {
        return Err(Error::shape(
            "rope",
            x.shape(),
            cos.shape(),
            "x [batch, heads, seq, head_dim], cos/sin [seq, head_dim/2]",
        ));
    }
    if cos.dtype != x.dtype || sin.dtype != x.dtype {
        return Err(Error::DTypeMismatch {
            op: "rope",
            lhs: x.dtype,
            rhs: cos.dtype,
        });
    }
    let n = x.numel();
    let out = ctx.alloc(x.dtype.storage_bytes(n), "rope")?;
    let p = params(
        "rope",
        [interleaved as u32, 0, 0, 0],
        n,
        x.shape(),
        &[lay(x.layout), lay(cos.layout), lay(sin.layout)],
    )?;
    let spec = KernelSpec::new(
        Family::Rope,
        if interleaved {
            "rope_interleaved"
        } else {
            "rope"
        },
        x.dtype.name(),
        c,
        c,
        !x.layout.is_contiguous(),
    );
    ctx.run(
        &spec,
        &p,
        &[
            buf(ctx, &x, "rope")?,
            buf(ctx, &cos, "rope")?,
            buf(ctx, &sin, "rope")?,
            out_buf(ctx, &out, "rope")?,
        ],
        groups_1d(n.div_ceil(per_word(x.dtype)) as u64),
    )?;
    Ok(Arc::new(out))
}
