//! Launchers: views → kernel arguments → launches. One module per op family group.

pub mod attention;
pub mod elementwise;
pub mod index;
pub mod matmul;
pub mod movement;
pub mod nn;

use crate::ctx::{grid, n64, Arg, Ctx, Module};
use crate::storage::CudaStorage;
use crate::strided::Strided;
use plumb_core::{DType, Error, Result, View};

/// The CUDA buffer behind a view.
pub fn stor<'a>(ctx: &Ctx, v: &View<'a>, op: &'static str) -> Result<&'a CudaStorage> {
    v.storage
        .as_any()
        .downcast_ref::<CudaStorage>()
        .ok_or_else(|| {
            Error::backend(
                &ctx.id,
                op,
                "the tensor's storage does not belong to a CUDA device",
            )
        })
}

/// Kernel name suffix of a plain dtype (bool computes as u8 where it is allowed at all).
pub fn tag(dt: DType) -> &'static str {
    match dt {
        DType::Bool => "u8",
        d => d.name(),
    }
}

/// Element size in bytes of a plain dtype.
pub fn esize(dt: DType) -> usize {
    dt.size().unwrap_or(1)
}

/// Position of `x` in `all` (an op's code in the kernels).
pub fn code<T: PartialEq + Copy>(all: &[T], x: T) -> i32 {
    all.iter().position(|&o| o == x).unwrap_or(0) as i32
}

/// A view as a kernel input: base pointer + merged layout.
pub fn input(ctx: &Ctx, v: &View, op: &'static str) -> Result<(u64, Strided)> {
    Ok((stor(ctx, v, op)?.ptr(), Strided::of(v.layout, op)?))
}

/// A contiguous copy of a view's elements, or the view itself when it already is one:
/// (device address of element 0, the copy that must outlive the kernels reading it).
pub struct Contig {
    pub ptr: u64,
    _keep: Option<CudaStorage>,
}

pub fn contig(ctx: &Ctx, v: &View, op: &'static str) -> Result<Contig> {
    let s = stor(ctx, v, op)?;
    if v.dtype.is_quantized() || v.layout.is_contiguous() {
        return Ok(Contig {
            ptr: s.ptr_at(v.dtype.storage_bytes(v.layout.offset)),
            _keep: None,
        });
    }
    let out = copy_strided(ctx, v, op)?;
    Ok(Contig {
        ptr: out.ptr(),
        _keep: Some(out),
    })
}

/// Strided → contiguous bit copy (every plain dtype, by element size).
pub fn copy_strided(ctx: &Ctx, v: &View, op: &'static str) -> Result<CudaStorage> {
    let n = v.numel();
    let size = esize(v.dtype);
    let out = ctx.alloc(n * size, op, v.dtype, v.shape())?;
    if n > 0 {
        let (xp, sx) = input(ctx, v, op)?;
        let mut args = [n64(n), Arg::U64(xp), Arg::S(sx), Arg::U64(out.ptr())];
        ctx.launch(
            Module::Movement,
            &format!("copy_b{size}"),
            grid(n),
            &mut args,
        )?;
    }
    Ok(out)
}
