//! matmul through cuBLAS (f32/f16/bf16 with f32 accumulation, f64), quantized matmul
//! (qmatvec_{q}_{act} for up to 8 activation rows; dequantize + cuBLAS above that) and
//! dequantize_{q}_{to}.

use super::{contig, copy_strided, esize, stor, tag};
use crate::ctx::{grid, n64, Arg, Ctx, Module};
use crate::storage::CudaStorage;
use crate::strided::merge;
use cudarc::cublas::sys::{
    cublasComputeType_t as Compute, cublasGemmAlgo_t, cublasOperation_t as Op, cudaDataType,
};
use cudarc::driver::LaunchConfig;
use plumb_core::{DType, Error, Result, StorageRef, View};
use std::ffi::c_void;
use std::sync::Arc;

/// One gemm operand as cuBLAS sees it: a row-major matrix (`trans` false, `ld` its row stride)
/// or a column-major one, with one batch stride (0: broadcast).
struct Operand {
    ptr: u64,
    trans: bool,
    ld: usize,
    batch_stride: usize,
    _keep: Option<CudaStorage>,
}

/// (column-major?, leading dimension) of a rows × cols matrix with element strides (sr, sc).
fn mat_layout(rows: usize, cols: usize, sr: usize, sc: usize) -> Option<(bool, usize)> {
    if cols == 1 || sc == 1 {
        let ld = if rows <= 1 { cols } else { sr };
        if ld >= cols.max(1) {
            return Some((false, ld));
        }
    }
    if rows == 1 || sr == 1 {
        let ld = if cols <= 1 { rows } else { sc };
        if ld >= rows.max(1) {
            return Some((true, ld));
        }
    }
    None
}

fn operand(ctx: &Ctx, v: &View, rows: usize, cols: usize, op: &'static str) -> Result<Operand> {
    let r = v.shape().len();
    let (bs, bst) = merge(&v.shape()[..r - 2], &v.layout.strides[..r - 2]);
    let batch_stride = if bs.len() == 1 {
        Some(if bs[0] == 1 { 0 } else { bst[0] })
    } else {
        None
    };
    let mat = mat_layout(rows, cols, v.layout.strides[r - 2], v.layout.strides[r - 1]);
    if let (Some(batch_stride), Some((trans, ld))) = (batch_stride, mat) {
        let s = stor(ctx, v, op)?;
        return Ok(Operand {
            ptr: s.ptr_at(v.layout.offset * esize(v.dtype)),
            trans,
            ld,
            batch_stride,
            _keep: None,
        });
    }
    let c = copy_strided(ctx, v, op)?;
    Ok(Operand {
        ptr: c.ptr(),
        trans: false,
        ld: cols,
        batch_stride: rows * cols,
        _keep: Some(c),
    })
}

fn i32_of(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        Error::invalid(
            "matmul",
            format!("{what} {v} exceeds cuBLAS's 32-bit sizes"),
        )
    })
}

/// Row-major C [batch, m, n] = A [batch, m, k] · B [batch, k, n] on cuBLAS (column-major: Cᵀ =
/// Bᵀ·Aᵀ, so B is cuBLAS's first operand).
#[allow(clippy::too_many_arguments)]
fn gemm(
    ctx: &Ctx,
    dtype: DType,
    a: &Operand,
    b: &Operand,
    c: u64,
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
) -> Result<()> {
    let blas = ctx.blas.as_ref().ok_or_else(|| Error::UnsupportedDType {
        op: "matmul".into(),
        dtype,
        device: ctx.id.clone(),
        reason: "cuBLAS (libcublas.so) was not found".into(),
    })?;
    let (ty, compute) = match dtype {
        DType::F32 => (cudaDataType::CUDA_R_32F, Compute::CUBLAS_COMPUTE_32F),
        DType::F16 => (cudaDataType::CUDA_R_16F, Compute::CUBLAS_COMPUTE_32F),
        DType::BF16 => (cudaDataType::CUDA_R_16BF, Compute::CUBLAS_COMPUTE_32F),
        DType::F64 => (cudaDataType::CUDA_R_64F, Compute::CUBLAS_COMPUTE_64F),
        d => {
            return Err(Error::UnsupportedDType {
                op: "matmul".into(),
                dtype: d,
                device: ctx.id.clone(),
                reason: "matmul is defined on floating dtypes".into(),
            })
        }
    };
    let (one32, zero32, one64, zero64) = (1f32, 0f32, 1f64, 0f64);
    let (alpha, beta): (*const c_void, *const c_void) = if dtype == DType::F64 {
        (&one64 as *const f64 as _, &zero64 as *const f64 as _)
    } else {
        (&one32 as *const f32 as _, &zero32 as *const f32 as _)
    };
    let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
    let start = std::time::Instant::now();
    // SAFETY: pointers address live device buffers of the sizes the shapes imply (checked by
    // core), leading dimensions were derived from the views' strides, alpha/beta match the
    // compute type, and the handle works on this device's stream.
    unsafe {
        cudarc::cublas::result::gemm_strided_batched_ex(
            *blas.handle(),
            op(b.trans),
            op(a.trans),
            i32_of(n, "n")?,
            i32_of(m, "m")?,
            i32_of(k, "k")?,
            alpha,
            b.ptr as *const c_void,
            ty,
            i32_of(b.ld, "leading dimension")?,
            b.batch_stride as i64,
            a.ptr as *const c_void,
            ty,
            i32_of(a.ld, "leading dimension")?,
            a.batch_stride as i64,
            beta,
            c as *mut c_void,
            ty,
            i32_of(n, "n")?,
            (m * n) as i64,
            i32_of(batch, "batch")?,
            compute,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }
    .map_err(|e| Error::backend(&ctx.id, "matmul", format!("cuBLAS: {e:?}")))?;
    ctx.profiled("cublas gemm", start)
}

pub fn matmul(ctx: &Ctx, a: View, b: View) -> Result<StorageRef> {
    let r = a.shape().len();
    let (m, k, n) = (a.shape()[r - 2], a.shape()[r - 1], b.shape()[r - 1]);
    let batch: usize = a.shape()[..r - 2].iter().product();
    let mut out_shape = a.shape().to_vec();
    out_shape[r - 1] = n;
    if k == 0 {
        return super::movement::full(ctx, a.dtype, batch * m * n, 0.0);
    }
    let out = ctx.alloc(
        a.dtype.storage_bytes(batch * m * n),
        "matmul",
        a.dtype,
        &out_shape,
    )?;
    if batch * m * n == 0 {
        return Ok(Arc::new(out));
    }
    let ao = operand(ctx, &a, m, k, "matmul")?;
    let bo = operand(ctx, &b, k, n, "matmul")?;
    // a weight shared by every batch over row-major activations: one gemm over batch·m rows
    if batch > 1 && bo.batch_stride == 0 && !ao.trans && ao.batch_stride == m * ao.ld {
        gemm(ctx, a.dtype, &ao, &bo, out.ptr(), 1, batch * m, n, k)?;
    } else {
        gemm(ctx, a.dtype, &ao, &bo, out.ptr(), batch, m, n, k)?;
    }
    Ok(Arc::new(out))
}

fn act_tag(ctx: &Ctx, x: &View) -> Result<&'static str> {
    match x.dtype {
        DType::F32 | DType::F16 | DType::BF16 => Ok(tag(x.dtype)),
        d => Err(Error::UnsupportedDType {
            op: "qmatmul".into(),
            dtype: d,
            device: ctx.id.clone(),
            reason: "quantized matmul takes f32, f16 or bf16 activations".into(),
        }),
    }
}

/// Rows of activations one qmatvec launch takes (QMV_MAX_ROWS in quant.cu).
const QMV_ROWS: usize = 8;
/// Output columns per block of qmatvec (one warp each).
const QMV_WARPS: u32 = 4;

pub fn qmatmul(ctx: &Ctx, x: View, w: View) -> Result<StorageRef> {
    let at = act_tag(ctx, &x)?;
    let (n, k) = (w.shape()[0], w.shape()[1]);
    let rows = x.numel().checked_div(k).unwrap_or(0);
    let mut out_shape = x.shape().to_vec();
    *out_shape.last_mut().unwrap_or(&mut 0) = n;
    let out = ctx.alloc(
        x.dtype.storage_bytes(rows * n),
        "qmatmul",
        x.dtype,
        &out_shape,
    )?;
    if rows * n == 0 {
        return Ok(Arc::new(out));
    }
    let xc = contig(ctx, &x, "qmatmul")?;
    let wc = contig(ctx, &w, "qmatmul")?;
    if rows > QMV_ROWS && ctx.blas.is_some() {
        // many rows (prefill): dequantize once into the activation dtype and use cuBLAS
        let wd = dequantize_into(ctx, &w, x.dtype)?;
        let a = Operand {
            ptr: xc.ptr,
            trans: false,
            ld: k,
            batch_stride: 0,
            _keep: None,
        };
        let b = Operand {
            ptr: wd.ptr(),
            trans: true,
            ld: k,
            batch_stride: 0,
            _keep: None,
        };
        gemm(ctx, x.dtype, &a, &b, out.ptr(), 1, rows, n, k)?;
        return Ok(Arc::new(out));
    }
    let name = format!("qmatvec_{}_{at}", w.dtype.name());
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(QMV_WARPS as usize) as u32, 1, 1),
        block_dim: (32 * QMV_WARPS, 1, 1),
        shared_mem_bytes: 0,
    };
    let es = esize(x.dtype) as u64;
    for r0 in (0..rows).step_by(QMV_ROWS) {
        let r = (rows - r0).min(QMV_ROWS);
        let mut args = [
            Arg::I32(r as i32),
            n64(n),
            n64(k),
            Arg::U64(xc.ptr + (r0 * k) as u64 * es),
            Arg::U64(wc.ptr),
            Arg::U64(out.ptr() + (r0 * n) as u64 * es),
        ];
        ctx.launch(Module::Quant, &name, cfg, &mut args)?;
    }
    Ok(Arc::new(out))
}

fn dequantize_into(ctx: &Ctx, w: &View, to: DType) -> Result<CudaStorage> {
    let n = w.numel();
    let out = ctx.alloc(to.storage_bytes(n), "dequantize", to, w.shape())?;
    if n > 0 {
        let wc = contig(ctx, w, "dequantize")?;
        let name = format!("dequantize_{}_{}", w.dtype.name(), tag(to));
        let mut args = [n64(n), Arg::U64(wc.ptr), Arg::U64(out.ptr())];
        ctx.launch(Module::Quant, &name, grid(n), &mut args)?;
    }
    Ok(out)
}

pub fn dequantize(ctx: &Ctx, w: View, to: DType) -> Result<StorageRef> {
    match to {
        DType::F32 | DType::F16 | DType::BF16 => Ok(Arc::new(dequantize_into(ctx, &w, to)?)),
        DType::F64 => {
            // through f32, the precision the CPU backend dequantizes in
            let f = dequantize_into(ctx, &w, DType::F32)?;
            let lay = plumb_core::Layout::contiguous(w.shape());
            let v = View {
                storage: &f,
                layout: &lay,
                dtype: DType::F32,
            };
            super::elementwise::cast(ctx, v, DType::F64)
        }
        d => Err(Error::UnsupportedDType {
            op: "dequantize".into(),
            dtype: d,
            device: ctx.id.clone(),
            reason: "dequantize produces a float dtype".into(),
        }),
    }
}
