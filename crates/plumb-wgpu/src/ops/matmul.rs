//! matmul (tiled, plus a matrix-vector path for M == 1), qmatmul and dequantize.

use super::movement::copy_storage;
use super::{buf, codec, out_buf, per_word, u32_of, MAX_RANK};
use crate::kernels::{compute_codec, Family, KernelSpec};
use crate::launch::{groups_1d, split_groups, Ctx};
use crate::ops::elementwise;
use plumb_core::{DType, Error, Layout, Result, StorageRef, View};
use std::sync::Arc;

/// Output dtype the kernel writes: the input's, or f32 when packed rows would split words.
fn kernel_out(dt: DType, n: usize) -> DType {
    if per_word(dt) > 1 && !n.is_multiple_of(per_word(dt)) {
        DType::F32
    } else {
        dt
    }
}

fn cast_back(ctx: &Ctx, y: StorageRef, shape: &[usize], to: DType) -> Result<StorageRef> {
    let l = Layout::contiguous(shape);
    elementwise::cast(
        ctx,
        View {
            storage: y.as_ref(),
            layout: &l,
            dtype: DType::F32,
        },
        to,
    )
}

/// The matmul parameter block (see kernels/matmul.wgsl).
fn mm_params(a: &View, b: &View) -> Result<(Vec<u32>, [usize; 4])> {
    let r = a.layout.rank();
    if r < 2 || b.layout.rank() != r {
        return Err(Error::shape("matmul", a.shape(), b.shape(), "ranks differ"));
    }
    let br = r - 2;
    if br > MAX_RANK {
        return Err(Error::invalid(
            "matmul",
            format!("{br} batch dims (at most {MAX_RANK})"),
        ));
    }
    let (m, k, n) = (a.shape()[r - 2], a.shape()[r - 1], b.shape()[r - 1]);
    let batch: usize = a.shape()[..br].iter().product();
    let mut p = vec![
        u32_of(m, "matmul", "m")?,
        u32_of(n, "matmul", "n")?,
        u32_of(k, "matmul", "k")?,
        br as u32,
    ];
    for i in 0..MAX_RANK {
        p.push(u32_of(
            a.shape().get(i).filter(|_| i < br).copied().unwrap_or(1),
            "matmul",
            "dim",
        )?);
    }
    for v in [a, b] {
        let s = &v.layout.strides;
        p.push(u32_of(v.layout.offset, "matmul", "offset")?);
        p.push(u32_of(s[r - 2], "matmul", "stride")?);
        p.push(u32_of(s[r - 1], "matmul", "stride")?);
        for i in 0..MAX_RANK {
            let st = s.get(i).copied().filter(|_| i < br).unwrap_or(0);
            p.push(u32_of(st, "matmul", "stride")?);
        }
    }
    Ok((p, [batch, m, n, k]))
}

/// Whether the view's offset and every stride but dim `skip` (its unit-stride dim) are multiples
/// of `elems` elements.
fn aligned_to(v: &View, skip: usize, elems: usize) -> bool {
    v.layout.offset.is_multiple_of(elems)
        && v.layout
            .strides
            .iter()
            .enumerate()
            .all(|(i, s)| i == skip || s.is_multiple_of(elems))
}

/// The vec4 tiled kernel for a row-major `a` and a row-major (`matmul_vec4`) or transposed
/// row-major (`matmul_vec4_nt`) `b`, when rows start on 4-element boundaries.
fn vec4_kernel(a: &View, b: &View, k: usize) -> Option<&'static str> {
    let r = a.layout.rank();
    let n = b.shape()[r - 1];
    let sa = &a.layout.strides;
    let sb = &b.layout.strides;
    let aligned = |v: &View, skip: usize| aligned_to(v, skip, 4);
    if sa[r - 1] != 1 || !k.is_multiple_of(4) || !aligned(a, r - 1) {
        return None;
    }
    if sb[r - 1] == 1 && n.is_multiple_of(4) && aligned(b, r - 1) {
        return Some("matmul_vec4");
    }
    if sb[r - 2] == 1 && aligned(b, r - 2) {
        return Some("matmul_vec4_nt");
    }
    None
}

/// The cooperative-matrix kernel for an f16 matmul on a device that has it, when the shapes and
/// layouts are the ones it was written for: M and N multiples of 32, K of 16, unit inner strides,
/// and offsets, row and batch strides multiples of 8 elements (16-byte aligned tile loads).
/// 64x64 blocks (`matmul_coop64`) where they still make at least 256 workgroups, else 32x32;
/// `_nt` when `b` is the transpose of a row-major matrix. Returns (kernel, block size).
fn coop_kernel(
    ctx: &Ctx,
    a: &View,
    b: &View,
    [batch, m, n, k]: [usize; 4],
) -> Option<(&'static str, usize)> {
    if !ctx.coop_f16 || a.dtype != DType::F16 || m == 0 || n == 0 || k == 0 {
        return None;
    }
    if !(m.is_multiple_of(32) && n.is_multiple_of(32) && k.is_multiple_of(16)) {
        return None;
    }
    let r = a.layout.rank();
    let eight = |v: &View, skip: usize| aligned_to(v, skip, 8);
    if a.layout.strides[r - 1] != 1 || !eight(a, r - 1) {
        return None;
    }
    let sb = &b.layout.strides;
    let nt = if sb[r - 1] == 1 && eight(b, r - 1) {
        false
    } else if sb[r - 2] == 1 && eight(b, r - 2) {
        true
    } else {
        return None;
    };
    let wide = m.is_multiple_of(64) && n.is_multiple_of(64) && batch * (m / 64) * (n / 64) >= 256;
    Some(match (wide, nt) {
        (true, false) => ("matmul_coop64", 64),
        (true, true) => ("matmul_coop64_nt", 64),
        (false, false) => ("matmul_coop32", 32),
        (false, true) => ("matmul_coop32_nt", 32),
    })
}

pub fn matmul(ctx: &Ctx, a: View, b: View) -> Result<StorageRef> {
    if !a.dtype.is_float() || a.dtype != b.dtype {
        return Err(Error::DTypeMismatch {
            op: "matmul",
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    let c = codec(ctx, a.dtype, "matmul")?;
    let (p, [batch, m, n, k]) = mm_params(&a, &b)?;
    let mut oshape = a.shape().to_vec();
    if let Some(last) = oshape.last_mut() {
        *last = n;
    }
    if batch > 65535 {
        return Err(Error::invalid(
            "matmul",
            format!("{batch} batches (at most 65535)"),
        ));
    }
    if let Some((kernel, block)) = coop_kernel(ctx, &a, &b, [batch, m, n, k]) {
        // tensor-core tiles accumulate in f32 into an f32 buffer, rounded to f16 after
        let acc = ctx.alloc(DType::F32.storage_bytes(batch * m * n), "matmul")?;
        let spec = KernelSpec::new(Family::MatmulCoop, kernel, "f16", "f16", "f32", true);
        let bufs = [
            buf(ctx, &a, "matmul")?,
            buf(ctx, &b, "matmul")?,
            out_buf(ctx, &acc, "matmul")?,
        ];
        let groups = (
            u32_of(n / block, "matmul", "column tiles")?,
            u32_of(m / block, "matmul", "row tiles")?,
            batch as u32,
        );
        ctx.run(&spec, &p, &bufs, groups)?;
        return cast_back(ctx, Arc::new(acc), &oshape, DType::F16);
    }
    let odt = kernel_out(a.dtype, n);
    let oc = compute_codec(odt, ctx.has_f16).unwrap_or("f32");
    let out = ctx.alloc(odt.storage_bytes(batch * m * n), "matmul")?;
    let tag = if odt == a.dtype {
        a.dtype.name().to_string()
    } else {
        format!("{}_{}", a.dtype.name(), odt.name())
    };
    let bufs = [
        buf(ctx, &a, "matmul")?,
        buf(ctx, &b, "matmul")?,
        out_buf(ctx, &out, "matmul")?,
    ];
    if m == 1 {
        let spec = KernelSpec::new(Family::Matvec, "matvec", &tag, c, oc, true);
        let (gx, gy) = split_groups(n.div_ceil(8) as u64);
        ctx.run(&spec, &p, &bufs, (gx, gy, batch as u32))?;
    } else if let Some(kernel) = vec4_kernel(&a, &b, k) {
        let spec = KernelSpec::new(Family::MatmulVec4, kernel, &tag, c, oc, true);
        let gx = u32_of(n.div_ceil(128), "matmul", "column tiles")?;
        let gy = u32_of(m.div_ceil(128), "matmul", "row tiles")?;
        ctx.run(&spec, &p, &bufs, (gx, gy, batch as u32))?;
    } else {
        let spec = KernelSpec::new(Family::Matmul, "matmul", &tag, c, oc, true);
        let gx = u32_of(n.div_ceil(64), "matmul", "column tiles")?;
        let gy = u32_of(m.div_ceil(64), "matmul", "row tiles")?;
        ctx.run(&spec, &p, &bufs, (gx, gy, batch as u32))?;
    }
    let out: StorageRef = Arc::new(out);
    if odt != a.dtype {
        return cast_back(ctx, out, &oshape, a.dtype);
    }
    Ok(out)
}

/// A quantized weight whose blocks start at byte 0 of its buffer (copied when offset).
fn whole_weight(ctx: &Ctx, w: &View) -> Result<Option<crate::pool::WgpuStorage>> {
    if w.layout.offset == 0 {
        Ok(None)
    } else {
        Ok(Some(copy_storage(ctx, *w)?))
    }
}

/// Above this many activation rows, qmatmul dequantizes the weight once and runs the tiled
/// matmul (a round number, not tuned: prompts are far longer, decoding is one row).
const DEQUANT_ROWS: usize = 16;

pub fn qmatmul(ctx: &Ctx, x: View, w: View) -> Result<StorageRef> {
    if !w.dtype.is_quantized() || w.layout.rank() != 2 {
        return Err(Error::invalid(
            "qmatmul",
            format!(
                "weight must be a 2-D quantized tensor, got {} {:?}",
                w.dtype,
                w.shape()
            ),
        ));
    }
    if !x.dtype.is_float() {
        return Err(Error::UnsupportedDType {
            op: "qmatmul".into(),
            dtype: x.dtype,
            device: ctx.id.clone(),
            reason: "activations must be floating".into(),
        });
    }
    let c = codec(ctx, x.dtype, "qmatmul")?;
    let (n, k) = (w.shape()[0], w.shape()[1]);
    if x.shape().last() != Some(&k) || k % 32 != 0 {
        return Err(Error::shape(
            "qmatmul",
            x.shape(),
            w.shape(),
            "x [.., k] × w [n, k], k a multiple of 32",
        ));
    }
    let rows = x.numel() / k.max(1);
    if rows > 65535 {
        return Err(Error::invalid(
            "qmatmul",
            format!("{rows} rows (at most 65535 per call)"),
        ));
    }
    let xc = if x.layout.is_contiguous() {
        None
    } else {
        Some(copy_storage(ctx, x)?)
    };
    let x_off = if xc.is_some() { 0 } else { x.layout.offset };
    // many rows (a prompt): the per-row kernel would read the whole weight once per row, so
    // dequantize it once into the activations' dtype and use the tiled matmul instead
    let wide = n * k * x.dtype.size().unwrap_or(4);
    if rows > DEQUANT_ROWS && (wide as u64) <= ctx.limits.max_binding {
        let wd = dequantize(ctx, w, x.dtype)?;
        let xs: &dyn plumb_core::BackendStorage = match &xc {
            Some(s) => s,
            None => x.storage,
        };
        let xl = Layout {
            shape: vec![rows, k],
            strides: vec![k, 1],
            offset: x_off,
        };
        // wᵀ [k, n] as a transposed view of the dequantized [n, k]
        let wl = Layout {
            shape: vec![k, n],
            strides: vec![1, k],
            offset: 0,
        };
        return matmul(
            ctx,
            View {
                storage: xs,
                layout: &xl,
                dtype: x.dtype,
            },
            View {
                storage: wd.as_ref(),
                layout: &wl,
                dtype: x.dtype,
            },
        );
    }
    let wc = whole_weight(ctx, &w)?;
    let mut oshape = x.shape().to_vec();
    if let Some(last) = oshape.last_mut() {
        *last = n;
    }
    let odt = kernel_out(x.dtype, n);
    let oc = compute_codec(odt, ctx.has_f16).unwrap_or("f32");
    let out = ctx.alloc(odt.storage_bytes(rows * n), "qmatmul")?;
    let p = vec![
        u32_of(n, "qmatmul", "n")?,
        u32_of(k, "qmatmul", "k")?,
        u32_of(rows, "qmatmul", "rows")?,
        u32_of(x_off, "qmatmul", "offset")?,
    ];
    let tag = if odt == x.dtype {
        format!("{}_{}", w.dtype.name(), x.dtype.name())
    } else {
        format!("{}_{}_{}", w.dtype.name(), x.dtype.name(), odt.name())
    };
    let spec = KernelSpec::new(Family::QMatmul, w.dtype.name(), &tag, c, oc, false);
    let spec = KernelSpec {
        name: format!("qmatmul_{tag}"),
        ..spec
    };
    let xb = match &xc {
        Some(s) => out_buf(ctx, s, "qmatmul")?,
        None => buf(ctx, &x, "qmatmul")?,
    };
    let wb = match &wc {
        Some(s) => out_buf(ctx, s, "qmatmul")?,
        None => buf(ctx, &w, "qmatmul")?,
    };
    let (gx, gy) = split_groups(n.div_ceil(32) as u64);
    ctx.run(
        &spec,
        &p,
        &[xb, wb, out_buf(ctx, &out, "qmatmul")?],
        (gx, gy, rows as u32),
    )?;
    let out: StorageRef = Arc::new(out);
    if odt != x.dtype {
        return cast_back(ctx, out, &oshape, x.dtype);
    }
    Ok(out)
}

pub fn dequantize(ctx: &Ctx, w: View, to: DType) -> Result<StorageRef> {
    if !w.dtype.is_quantized() {
        return Err(Error::invalid(
            "dequantize",
            format!("{} is not quantized", w.dtype),
        ));
    }
    let oc = match to {
        DType::F64 if ctx.has_f64 => "f64",
        DType::F16 | DType::BF16 | DType::F32 => compute_codec(to, ctx.has_f16).unwrap_or("f32"),
        _ => {
            return Err(Error::UnsupportedDType {
                op: "dequantize".into(),
                dtype: to,
                device: ctx.id.clone(),
                reason: "dequantize targets f32, f16 or bf16 here".into(),
            })
        }
    };
    let wc = whole_weight(ctx, &w)?;
    let n = w.numel();
    let out = ctx.alloc(to.storage_bytes(n), "dequantize")?;
    let p = super::params("dequantize", [0; 4], n, &[], &[])?;
    let spec = KernelSpec::new(
        Family::Dequantize,
        w.dtype.name(),
        &format!("{}_{}", w.dtype.name(), to.name()),
        oc,
        oc,
        false,
    );
    let spec = KernelSpec {
        name: format!("dequantize_{}_{}", w.dtype.name(), to.name()),
        ..spec
    };
    let wb = match &wc {
        Some(s) => out_buf(ctx, s, "dequantize")?,
        None => buf(ctx, &w, "dequantize")?,
    };
    ctx.run(
        &spec,
        &p,
        &[wb, out_buf(ctx, &out, "dequantize")?],
        groups_1d(n.div_ceil(per_word(to)) as u64),
    )?;
    Ok(Arc::new(out))
}
