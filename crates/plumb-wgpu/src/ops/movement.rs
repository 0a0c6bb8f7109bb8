//! Uploads, readback, fills, copies, cat and in-place writes: data movement, bit-exact for every
//! dtype.

use super::{buf, lay, out_buf, params, per_word, u32_of};
use crate::kernels::{bit_codec, Family, KernelSpec};
use crate::launch::{groups_1d, Ctx};
use crate::pool::WgpuStorage;
use plumb_core::shape::contiguous_strides;
use plumb_core::{BackendStorage, DType, Error, Layout, Result, StorageRef, View};
use std::sync::Arc;

pub fn upload(ctx: &Ctx, dtype: DType, numel: usize, bytes: &[u8]) -> Result<StorageRef> {
    let need = dtype.storage_bytes(numel);
    if bytes.len() != need {
        return Err(Error::upload_size(dtype, numel, bytes.len()));
    }
    let mut out = ctx.alloc(need, "upload")?;
    ctx.write(out_buf(ctx, &out, "upload")?, &bytes[..need], "upload")?;
    // integer data from the host (ids, up to a million values): its range, for index checks
    if numel <= 1 << 20 {
        out.set_range(plumb_core::convert::int_range(dtype, bytes, numel)?);
    }
    Ok(Arc::new(out))
}

/// Byte view of a quantized tensor as a u8 layout (they are always contiguous).
fn quant_bytes_layout(x: &View) -> Layout {
    let start = x.dtype.storage_bytes(x.layout.offset);
    Layout {
        shape: vec![x.dtype.storage_bytes(x.numel())],
        strides: vec![1],
        offset: start,
    }
}

/// If the view's bytes are one aligned contiguous range of its buffer: (offset, padded length).
fn aligned_range(x: &View, b: &wgpu::Buffer) -> Option<(u64, u64)> {
    if !x.dtype.is_quantized() && !x.layout.is_contiguous() {
        return None;
    }
    let off = x.dtype.storage_bytes(x.layout.offset) as u64;
    let len = (x.dtype.storage_bytes(x.numel()) as u64).next_multiple_of(4);
    (off.is_multiple_of(4) && off + len <= b.size()).then_some((off, len))
}

pub fn download(ctx: &Ctx, x: View) -> Result<Vec<u8>> {
    let need = x.dtype.storage_bytes(x.numel());
    let b = buf(ctx, &x, "download")?;
    let mut bytes = match aligned_range(&x, b) {
        Some((off, len)) => ctx.read(b, off, len, "download")?,
        None => {
            let c = copy_storage(ctx, x)?;
            let cb = out_buf(ctx, &c, "download")?;
            ctx.read(cb, 0, (need as u64).next_multiple_of(4), "download")?
        }
    };
    bytes.truncate(need);
    Ok(bytes)
}

pub fn full(ctx: &Ctx, dtype: DType, numel: usize, value: f64) -> Result<StorageRef> {
    let size = dtype.size().ok_or_else(|| {
        Error::invalid("full", format!("cannot fill {dtype}; quantize f32 values"))
    })?;
    let pattern = plumb_core::convert::f64_to_bytes(dtype, &vec![value; 8 / size])?;
    let w0 = u32::from_le_bytes([pattern[0], pattern[1], pattern[2], pattern[3]]);
    let w1 = u32::from_le_bytes([pattern[4], pattern[5], pattern[6], pattern[7]]);
    let bytes = dtype.storage_bytes(numel);
    let out = ctx.alloc(bytes, "full")?;
    let words = bytes.div_ceil(4);
    let p = params("full", [w0, w1, 0, 0], words, &[], &[])?;
    let spec = KernelSpec::new(Family::Fill, "fill", "u32", "b32", "b32", false);
    ctx.run(
        &spec,
        &p,
        &[out_buf(ctx, &out, "full")?],
        groups_1d(words as u64),
    )?;
    Ok(Arc::new(out))
}

/// Copy `x` (any layout) into the slab [start, start + len) along `dim` of the contiguous
/// `out` of shape `out_shape` (the whole of it for a plain copy).
fn copy_into(
    ctx: &Ctx,
    x: &View,
    out: &wgpu::Buffer,
    out_shape: &[usize],
    dim: usize,
    start: usize,
) -> Result<()> {
    let (layout, dt) = if x.dtype.is_quantized() {
        (quant_bytes_layout(x), DType::U8)
    } else {
        (x.layout.clone(), x.dtype)
    };
    let shape: Vec<usize> = if x.dtype.is_quantized() {
        layout.shape.clone()
    } else {
        out_shape.to_vec()
    };
    if layout.numel() == 0 {
        return Ok(());
    }
    let n: usize = shape.iter().product();
    let pw = per_word(dt);
    let len = layout.shape.get(dim).copied().unwrap_or(1);
    // words of the output this slab touches
    let cs = contiguous_strides(&shape);
    let first = if shape.is_empty() { 0 } else { start * cs[dim] };
    let mut last = first;
    for (i, &s) in shape.iter().enumerate() {
        let span = if i == dim { len } else { s };
        last += (span - 1) * cs[i];
    }
    let (w0, w1) = (first / pw, last / pw);
    let p = params(
        "copy",
        [
            u32_of(dim, "copy", "dim")?,
            u32_of(start, "copy", "start")?,
            u32_of(len, "copy", "len")?,
            u32_of(w0, "copy", "word")?,
        ],
        n,
        &shape,
        &[lay(&layout)],
    )?;
    let spec = KernelSpec::new(
        Family::Copy,
        "copy",
        dt.name(),
        bit_codec(dt),
        bit_codec(dt),
        true,
    );
    ctx.run(
        &spec,
        &p,
        &[buf(ctx, x, "copy")?, out],
        groups_1d((w1 - w0 + 1) as u64),
    )
}

/// A contiguous copy of `x` in a new storage.
pub fn copy_storage(ctx: &Ctx, x: View) -> Result<WgpuStorage> {
    let bytes = x.dtype.storage_bytes(x.numel());
    let out = ctx.alloc(bytes, "copy")?;
    let ob = out_buf(ctx, &out, "copy")?;
    let src = buf(ctx, &x, "copy")?;
    match aligned_range(&x, src) {
        Some((off, len)) if len <= ob.size() => ctx.copy_buffer(src, off, ob, len, "copy")?,
        _ => copy_into(ctx, &x, ob, x.shape(), 0, 0)?,
    }
    Ok(out)
}

pub fn copy(ctx: &Ctx, x: View) -> Result<StorageRef> {
    Ok(Arc::new(copy_storage(ctx, x)?))
}

pub fn cat(ctx: &Ctx, xs: &[View], dim: usize) -> Result<StorageRef> {
    let Some(first) = xs.first() else {
        return Err(Error::invalid("cat", "no tensors"));
    };
    if first.dtype.is_quantized() {
        return Err(Error::invalid(
            "cat",
            "quantized tensors cannot be concatenated (dequantize first)",
        ));
    }
    let mut shape = first.shape().to_vec();
    if dim >= shape.len() {
        return Err(Error::invalid("cat", format!("dim {dim} of {shape:?}")));
    }
    shape[dim] = xs.iter().map(|v| v.shape()[dim]).sum();
    let n: usize = shape.iter().product();
    let out = ctx.alloc(first.dtype.storage_bytes(n), "cat")?;
    let ob = out_buf(ctx, &out, "cat")?;
    let mut start = 0;
    for x in xs {
        copy_into(ctx, x, ob, &shape, dim, start)?;
        start += x.shape()[dim];
    }
    Ok(Arc::new(out))
}

/// `Backend::write`: `src` into positions `start ..` along `dim` of a contiguous tensor (offset
/// 0) held by `dst`, with the copy kernel cat uses. Other layouts: `Ok(false)` (core copies).
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
    let Some(d) = dst.downcast_mut::<WgpuStorage>() else {
        return Ok(false);
    };
    // what it held is no longer all it holds
    d.set_range(None);
    let ob = out_buf(ctx, d, "write_slice")?;
    copy_into(ctx, &src, ob, &dst_layout.shape, dim, start)?;
    Ok(true)
}
