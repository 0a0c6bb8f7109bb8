//! attention_{dtype}: fused scaled-dot-product attention, one query row per block, reading q, k,
//! v and the mask through their strides (no copies). Returns `None` (core composes matmul +
//! softmax) for key lengths beyond the shared-memory score buffer or a mask of another dtype.

use super::{stor, tag};
use crate::ctx::{n64, Arg, Ctx, Module};
use cudarc::driver::LaunchConfig;
use plumb_core::{AttentionArgs, Result, StorageRef, View};
use std::sync::Arc;

/// Longest key sequence the kernel holds (ATT_MAX_T in attention.cu).
const MAX_T: usize = 4096;

fn view4(v: &View) -> Arg {
    let s = &v.layout.strides;
    Arg::V4([
        v.layout.offset as i64,
        s[0] as i64,
        s[1] as i64,
        s[2] as i64,
        s[3] as i64,
    ])
}

pub fn attention(
    ctx: &Ctx,
    q: View,
    k: View,
    v: View,
    mask: Option<View>,
    args: AttentionArgs,
) -> Result<Option<StorageRef>> {
    let op = "attention";
    let (b, h, s, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    let (hkv, t) = (k.shape()[1], k.shape()[2]);
    // the kernel reads k and v as q's dtype: a narrower KV cache is left to core's composition
    let same = k.dtype == q.dtype && v.dtype == q.dtype;
    if !same || t > MAX_T || mask.is_some_and(|m| m.dtype != q.dtype) || hkv == 0 || h % hkv != 0 {
        return Ok(None);
    }
    let n = b * h * s * d;
    let out = ctx.alloc(q.dtype.storage_bytes(n), op, q.dtype, q.shape())?;
    if b * h * s == 0 || d == 0 {
        return Ok(Some(Arc::new(out)));
    }
    let esize = if q.dtype == plumb_core::DType::F64 {
        8
    } else {
        4
    };
    let threads = (t.max(d).div_ceil(32) * 32).clamp(32, 256) as u32;
    let cfg = LaunchConfig {
        grid_dim: ((b * h * s) as u32, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: ((t + 32) * esize) as u32,
    };
    let (mp, mv) = match &mask {
        Some(m) => (stor(ctx, m, op)?.ptr(), view4(m)),
        None => (0, Arg::V4([0; 5])),
    };
    let mut a = [
        Arg::I32(h as i32),
        Arg::I32(hkv as i32),
        n64(s),
        n64(t),
        n64(d),
        Arg::F64(args.scale),
        Arg::I32(args.causal as i32),
        Arg::U64(stor(ctx, &q, op)?.ptr()),
        view4(&q),
        Arg::U64(stor(ctx, &k, op)?.ptr()),
        view4(&k),
        Arg::U64(stor(ctx, &v, op)?.ptr()),
        view4(&v),
        Arg::U64(mp),
        mv,
        Arg::U64(out.ptr()),
    ];
    ctx.launch(
        Module::Attention,
        &format!("attention_{}", tag(q.dtype)),
        cfg,
        &mut a,
    )?;
    Ok(Some(Arc::new(out)))
}
