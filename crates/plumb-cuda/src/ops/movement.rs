//! Uploads, readback, fills, copies, cat and in-place writes: bit-exact data movement for every
//! dtype.

use super::{contig, copy_strided, esize, stor};
use crate::ctx::{grid, n64, Arg, Ctx, Module};
use crate::storage::CudaStorage;
use plumb_core::{convert, BackendStorage, DType, Error, Layout, Result, StorageRef, View};
use std::sync::Arc;

pub fn upload(ctx: &Ctx, dtype: DType, numel: usize, bytes: &[u8]) -> Result<StorageRef> {
    let need = dtype.storage_bytes(numel);
    if bytes.len() != need {
        return Err(Error::upload_size(dtype, numel, bytes.len()));
    }
    let mut out = ctx.alloc(need, "upload", dtype, &[numel])?;
    if need > 0 {
        let mut dst = out.slice_mut().slice_mut(0..need);
        ctx.stream
            .memcpy_htod(&bytes[..need], &mut dst)
            .map_err(|e| ctx.err("upload", e))?;
    }
    // integer data from the host (ids, up to a million values): its range, for index checks
    if numel <= 1 << 20 {
        out.set_range(convert::int_range(dtype, bytes, numel)?);
    }
    Ok(Arc::new(out))
}

/// Contiguous row-major bytes of the view (waits for the queued work).
pub fn download(ctx: &Ctx, x: View) -> Result<Vec<u8>> {
    let n = x.dtype.storage_bytes(x.numel());
    let mut host = vec![0u8; n];
    if n == 0 {
        return Ok(host);
    }
    let s = stor(ctx, &x, "download")?;
    let start = std::time::Instant::now();
    if x.dtype.is_quantized() || x.layout.is_contiguous() {
        let start = x.dtype.storage_bytes(x.layout.offset);
        if start + n > s.byte_len() {
            return Err(Error::backend(
                &ctx.id,
                "download",
                "view beyond its buffer",
            ));
        }
        let src = s.slice().slice(start..start + n);
        ctx.stream
            .memcpy_dtoh(&src, &mut host)
            .map_err(|e| ctx.err("download", e))?;
    } else {
        let c = copy_strided(ctx, &x, "download")?;
        let src = c.slice().slice(0..n);
        ctx.stream
            .memcpy_dtoh(&src, &mut host)
            .map_err(|e| ctx.err("download", e))?;
    }
    ctx.synchronize()?;
    ctx.profiled("download", start)?;
    Ok(host)
}

pub fn full(ctx: &Ctx, dtype: DType, numel: usize, value: f64) -> Result<StorageRef> {
    let size = esize(dtype);
    let out = ctx.alloc(dtype.storage_bytes(numel), "full", dtype, &[numel])?;
    if numel > 0 {
        let bytes = convert::f64_to_bytes(dtype, &[value])?;
        let mut word = [0u8; 8];
        word[..size].copy_from_slice(&bytes[..size]);
        let bits = u64::from_le_bytes(word);
        let v = match size {
            1 => Arg::B1(bits as u8),
            2 => Arg::B2(bits as u16),
            4 => Arg::B4(bits as u32),
            _ => Arg::U64(bits),
        };
        let mut args = [n64(numel), v, Arg::U64(out.ptr())];
        ctx.launch(
            Module::Movement,
            &format!("fill_b{size}"),
            grid(numel),
            &mut args,
        )?;
    }
    Ok(Arc::new(out))
}

pub fn copy(ctx: &Ctx, x: View) -> Result<StorageRef> {
    if !x.dtype.is_quantized() {
        return Ok(Arc::new(copy_strided(ctx, &x, "copy")?));
    }
    // quantized views are whole blocks, contiguous: one device-to-device copy
    let n = x.dtype.storage_bytes(x.numel());
    let s = stor(ctx, &x, "copy")?;
    let start = x.dtype.storage_bytes(x.layout.offset);
    let mut out = ctx.alloc(n, "copy", x.dtype, x.shape())?;
    if n > 0 {
        let src = s.slice().slice(start..start + n);
        let mut dst = out.slice_mut().slice_mut(0..n);
        ctx.stream
            .memcpy_dtod(&src, &mut dst)
            .map_err(|e| ctx.err("copy", e))?;
    }
    Ok(Arc::new(out))
}

pub fn cat(ctx: &Ctx, xs: &[View], dim: usize) -> Result<StorageRef> {
    let first = xs
        .first()
        .ok_or_else(|| Error::invalid("cat", "no tensors to concatenate"))?;
    let dtype = first.dtype;
    let mut shape = first.shape().to_vec();
    shape[dim] = xs.iter().map(|v| v.shape()[dim]).sum();
    let n: usize = shape.iter().product();
    let out = ctx.alloc(dtype.storage_bytes(n), "cat", dtype, &shape)?;
    let mut start = 0usize;
    for v in xs {
        into_slab(ctx, v, out.ptr(), &shape, dim, start, "cat")?;
        start += v.shape()[dim];
    }
    Ok(Arc::new(out))
}

/// `x` into positions `start ..` along `dim` of the contiguous tensor of `shape` at `out`.
fn into_slab(
    ctx: &Ctx,
    x: &View,
    out: u64,
    shape: &[usize],
    dim: usize,
    start: usize,
    op: &'static str,
) -> Result<()> {
    let inner: usize = shape[dim + 1..].iter().product();
    let outer: usize = shape[..dim].iter().product();
    let w = x.shape()[dim] * inner;
    let m = outer * w;
    if m == 0 {
        return Ok(());
    }
    let c = contig(ctx, x, op)?;
    let mut args = [
        n64(m),
        n64(w),
        n64(shape[dim] * inner),
        n64(start * inner),
        Arg::U64(c.ptr),
        Arg::U64(out),
    ];
    ctx.launch(
        Module::Movement,
        &format!("cat_b{}", esize(x.dtype)),
        grid(m),
        &mut args,
    )
}

/// `Backend::write`: `src` into positions `start ..` along `dim` of a contiguous tensor (offset
/// 0) held by `dst`, with cat's kernel. Other layouts: `Ok(false)` (core copies).
pub fn write(
    ctx: &Ctx,
    dst: &mut dyn BackendStorage,
    dst_layout: &Layout,
    dim: usize,
    start: usize,
    src: View,
) -> Result<bool> {
    // core never sends quantized data here (see the trait)
    if !dst_layout.is_contiguous_from_start() {
        return Ok(false);
    }
    let Some(d) = dst.downcast_mut::<CudaStorage>() else {
        return Ok(false);
    };
    // what it held is no longer all it holds
    d.set_range(None);
    into_slab(
        ctx,
        &src,
        d.ptr(),
        &dst_layout.shape,
        dim,
        start,
        "write_slice",
    )?;
    Ok(true)
}
