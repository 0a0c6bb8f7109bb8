//! `qmatmul_{q4_0,q4_1,q8_0}` and `dequantize_{q…}`: x [rows…, k] (float) × wᵀ for a quantized
//! w [n, k] (GGUF blocks of 32, see plumb-core's `quant.rs`), never dequantizing all of w.
//!
//! - few rows (decoding): activations in 16-bit blocks and integer block dots: on weights packed
//!   with 16 rows in the lanes (`qpack.rs`: AVX-512 VNNI or AVX2, the layout the model loaders
//!   ask for), else in stored order (`qdot_i16.rs`: AVX-512, AVX2 or NEON); elsewhere each
//!   weight block is dequantized into registers and dotted with the f32 activations (`qdot.rs`);
//! - many rows (prefill): with AVX-512 VNNI, activations in 16-bit blocks and integer block dots
//!   (`qgemm_i16.rs`); elsewhere (or `PLUMB_CPU_QACT=f32`, or non-finite activations) w is
//!   dequantized one panel of rows at a time into a scratch buffer and multiplied by the f32
//!   gemm kernels.

use super::matmul::{Dst, Mat};
use super::qpack::{self, QMat};
use super::Float;
use crate::storage::{contiguous, device_err, CpuStorage};
use plumb_core::{DType, Result, View};
use std::borrow::Cow;

/// Rows of activations at or above which the panel + gemm path is used.
const GEMM_ROWS: usize = 8;
/// Weight rows dequantized per panel on the gemm path (at least)...
const PANEL: usize = 512;
/// ...or the whole matrix when it has at most this many elements (16 MiB of f32 scratch), so
/// the activations are packed by gemm once instead of once per panel.
const WHOLE: usize = 1 << 22;
// panels start on a packed group of rows (qpack.rs)
const _: () = assert!(PANEL.is_multiple_of(qpack::GROUP));

/// The quantized bytes of a whole (contiguous) view, starting at its offset, in stored row
/// order (a packed storage is unpacked into a copy).
pub fn quant_bytes<'a>(op: &str, w: &View<'a>) -> Result<Cow<'a, [u8]>> {
    let dt = w.dtype;
    if !w.layout.is_contiguous() || !w.layout.offset.is_multiple_of(32) {
        return Err(device_err(
            op,
            format!(
                "{dt} view {:?} must be contiguous and start on a block boundary",
                w.shape()
            ),
        ));
    }
    let s = quant_storage(op, w)?;
    let start = w.layout.offset / 32 * dt.block_bytes();
    let len = dt.storage_bytes(w.numel());
    let past = || {
        device_err(
            op,
            format!("{dt} view {:?} reaches past its storage", w.shape()),
        )
    };
    match s.plain_bytes() {
        Cow::Borrowed(b) => b
            .get(start..start + len)
            .map(Cow::Borrowed)
            .ok_or_else(past),
        Cow::Owned(b) => b
            .get(start..start + len)
            .map(|b| Cow::Owned(b.to_vec()))
            .ok_or_else(past),
    }
}

/// The CPU storage behind a quantized view, checked to hold that dtype.
fn quant_storage<'a>(op: &str, w: &View<'a>) -> Result<&'a CpuStorage> {
    let s = crate::storage::storage_of(op, w)?;
    match s.data() {
        crate::storage::Data::U8(_) if s.dtype() == w.dtype => Ok(s),
        _ => Err(device_err(
            op,
            format!("storage holds {} but the view says {}", s.dtype(), w.dtype),
        )),
    }
}

/// Whether the view [n, k] is all of its storage, in order.
fn whole(w: &View, s: &CpuStorage) -> bool {
    let (n, k) = (w.shape()[0], w.shape()[1]);
    w.layout.is_contiguous()
        && w.layout.offset == 0
        && s.bytes().len() == w.dtype.storage_bytes(n * k)
}

/// The quantized matrix `w` [n, k] as the kernels read it: the packed storage itself when the
/// view is all of it, else the view's bytes in stored row order (`keep` holds an unpacked copy).
fn quant_mat<'a>(w: &View<'a>, keep: &'a mut Option<Cow<'a, [u8]>>) -> Result<QMat<'a>> {
    let (dt, n, k) = (w.dtype, w.shape()[0], w.shape()[1]);
    let s = quant_storage("qmatmul", w)?;
    if whole(w, s) && s.packed_k() == Some(k) {
        return Ok(QMat {
            dt,
            bytes: s.bytes(),
            n,
            k,
            packed: true,
        });
    }
    let bytes = keep.insert(quant_bytes("qmatmul", w)?);
    Ok(QMat {
        dt,
        bytes,
        n,
        k,
        packed: false,
    })
}

/// `w` [n, k] in the packed layout (`qpack.rs`) where this CPU has the kernels for it and `w` is
/// a whole matrix of at least one group of rows.
pub fn pack(w: &View) -> Result<Option<CpuStorage>> {
    let dt = w.dtype;
    if !dt.is_quantized() || w.layout.shape.len() != 2 || !qpack::available(dt) {
        return Ok(None);
    }
    let (n, k) = (w.shape()[0], w.shape()[1]);
    let s = quant_storage("pack", w)?;
    if !whole(w, s) || s.packed_k().is_some() || n < qpack::GROUP || k == 0 {
        return Ok(None);
    }
    let bytes = qpack::pack(dt, s.bytes(), n, k);
    Ok(Some(CpuStorage::packed(dt, bytes, k)))
}

/// `dequantize_{q…}` into f32.
pub fn dequantize_f32(w: &View) -> Result<Vec<f32>> {
    let bytes = &quant_bytes("dequantize", w)?[..];
    let dt = w.dtype;
    let bb = dt.block_bytes();
    let mut out = vec![0f32; w.numel()];
    let per = 1024; // blocks per task
    crate::par::zip_chunks_mut(&mut out, 32 * per, bytes, bb * per, |o, b| {
        super::qdot::dequant_row(dt, b, o)
    });
    Ok(out)
}

/// `qmatmul_{wdtype}` with activations of float type `T`.
pub fn qmatmul_float<T: Float>(x: &View, w: &View) -> Result<Vec<T>> {
    let dt = w.dtype;
    if !matches!(dt, DType::Q4_0 | DType::Q4_1 | DType::Q8_0) {
        return Err(device_err(
            "qmatmul",
            format!("{dt} is not a quantized dtype"),
        ));
    }
    let (n, k) = (w.shape()[0], w.shape()[1]);
    // core never builds such a tensor (quantized last dims are whole blocks); a view handed to
    // the backend directly gets an error here instead of a slicing panic in the block loops
    if !k.is_multiple_of(32) {
        return Err(device_err(
            "qmatmul",
            format!(
                "{dt} weight {:?}: rows of {k} values are not whole blocks of 32",
                w.shape()
            ),
        ));
    }
    let xc = contiguous::<T>("qmatmul", x)?;
    let xs = T::cow_to_f32(&xc);
    let rows = xs.len().checked_div(k).unwrap_or(0);
    let mut keep = None;
    let wm = quant_mat(w, &mut keep)?;
    let i16 = super::qdot::i16_activations(&xs);
    let out = if k == 0 {
        vec![0f32; x.numel() / k.max(1) * n]
    } else if rows >= GEMM_ROWS && i16 && super::qgemm_i16::available(dt) {
        super::qgemm_i16::qgemm(&xs, wm, rows)
    } else if rows >= GEMM_ROWS {
        qmatmul_panels(&xs, wm, rows)
    } else if wm.packed && i16 {
        qpack::qmatmul_rows(&xs, wm, rows)
    } else {
        // stored row order (a packed matrix comes here only with non-finite activations)
        let mut buf = Vec::new();
        let wb = qpack::stored_rows(wm, 0, n, &mut buf);
        super::qdot::qmatmul_rows(&xs, wb, dt, rows, n, k)
    };
    Ok(T::vec_from_f32(out))
}

/// Many rows: dequantize PANEL weight rows at a time and run the f32 gemm into out's columns.
fn qmatmul_panels(xs: &[f32], wm: QMat, rows: usize) -> Vec<f32> {
    let (dt, n, k) = (wm.dt, wm.n, wm.k);
    // every element is written by gemm (it does not read dst)
    let mut out = crate::storage::alloc_overwrite::<f32>(rows * n);
    let row_bytes = dt.storage_bytes(k);
    // whole panels start on a packed group (PANEL is a multiple of 16)
    let panel_rows = if n * k <= WHOLE { n } else { PANEL.min(n) };
    let mut panel = crate::storage::alloc_overwrite::<f32>(panel_rows * k);
    let mut j0 = 0;
    while j0 < n {
        let cols = panel_rows.min(n - j0);
        let p = &mut panel[..cols * k];
        // the panel as gemm's right-hand side: row-major [cols, k] from stored rows, or
        // value-major [k, cols] from packed groups (strides (col, row) of wᵀ [k, cols])
        let (cs, rs) = if wm.packed {
            qpack::dequant_value_major(wm, j0, cols, p);
            (1, cols as isize)
        } else {
            let w = wm.plain_rows(j0, cols);
            crate::par::zip_chunks_mut(p, k, w, row_bytes, |o, b| {
                super::qdot::dequant_row(dt, b, o)
            });
            (k as isize, 1)
        };
        let (xm, pm) = (
            Mat {
                ptr: xs.as_ptr(),
                cs: 1,
                rs: k as isize,
            },
            Mat {
                ptr: p.as_ptr(),
                cs,
                rs,
            },
        );
        // SAFETY: out has rows·n elements; columns j0..j0+cols of every row are written with
        // row stride n. xs holds rows·k, the panel cols·k elements, read as documented.
        unsafe {
            super::matmul::gemm_team(
                (rows, cols, k),
                Dst {
                    ptr: out.as_mut_ptr().add(j0),
                    rs: n,
                    read: false,
                    alpha: 0f32,
                    beta: 1f32,
                },
                xm,
                super::matmul::Rhs::Mat(pm),
                &|_, _, _, _| {},
            )
        };
        j0 += cols;
    }
    out
}

/// `dequantize_{q…}` to any float type.
pub fn dequantize_float<T: Float>(w: &View) -> Result<Vec<T>> {
    Ok(T::slice_from_f32(&dequantize_f32(w)?))
}

/// Check that a raw view over the quantized storage is well-formed (used by `copy`).
pub fn copy_quant(w: &View) -> Result<Vec<u8>> {
    Ok(quant_bytes("copy", w)?.into_owned())
}
