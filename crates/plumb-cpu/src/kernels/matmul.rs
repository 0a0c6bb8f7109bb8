//! `matmul_{dtype}`: batched matmul on strided, transposed and broadcast views.
//!
//! f32 and f64 go straight to the `gemm` crate with the views' strides (no copies; broadcast
//! batch dims are stride 0). f16 and bf16 are widened to f32, multiplied by the same f32 kernels
//! (f32 accumulation) and rounded once on the way out (measured faster here than gemm's own f16
//! kernels: 134–143 vs 102–103 GFLOP/s at 1024, 2 threads, 2026-11-24 13:20 UTC). bf16 can use
//! the AVX512-BF16 dot-product kernel in `matmul_bf16.rs` instead, where it was measured faster
//! than the f32 FMA at run time (see [`matmul_bf16::selected`](super::matmul_bf16::selected)),
//! bias, activation and residual included. Products of few
//! rows in f16/bf16 widen block by block instead (`matmul_widen.rs`), and their linear layers
//! take the bias, activation and residual before the one rounding ([`linear_half`]). An f32
//! weight the loaders packed into the AVX2 kernel's panels (`matmul_f32_avx2.rs`, [`Rhs`]) is
//! multiplied from its panels whenever the view is the whole weight; other views read the
//! row-major copy the storage makes on first use. f32 and f16 weights packed as `matmul_rows`'
//! strips go through `matmul_strips.rs` first, at any number of rows.

use super::matmul_bf16::PackedBf16;
use super::matmul_f32_avx2::PackedB;
use super::matmul_widen::{matmul_widen, Epilogue, Strided, Wide};
use super::unary::RowMap;
use super::Float;
use crate::storage::{contiguous, device_err, raw_slice, Elem};
use gemm::Parallelism;
use plumb_core::{Layout, Result, UnaryOp, View};
use std::any::TypeId;

/// Storage offset of batch `bi` (batch dims = all but the last two).
pub fn batch_offset(layout: &Layout, mut bi: usize) -> usize {
    let nb = layout.rank() - 2;
    let mut off = layout.offset;
    for d in (0..nb).rev() {
        let size = layout.shape[d];
        if size == 0 {
            return off;
        }
        off += (bi % size) * layout.strides[d];
        bi /= size;
    }
    off
}

/// Shape facts of a batched matmul.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

pub fn dims(a: &View, b: &View) -> Dims {
    let (sa, sb) = (a.shape(), b.shape());
    let r = sa.len();
    Dims {
        batch: sa[..r - 2].iter().product(),
        m: sa[r - 2],
        k: sa[r - 1],
        n: sb[sb.len() - 1],
    }
}

/// Most rows of a half-precision product that [`matmul_widen`] takes (as `matmul_rows` does for
/// f32).
const FEW_ROWS: usize = super::matmul_rows::MAX_ROWS;

/// bf16 products of more rows than this (over the batch) use the `vdpbf16ps` kernel where it is
/// selected.
const DOT_MIN_ROWS: usize = 16;

/// Below this many multiply-adds per matrix, batches run in parallel with single-threaded gemm.
const SMALL: usize = 64 * 64 * 64;

/// One strided operand: data, its layout and the element strides of its matrix dims; for a
/// weight held in the AVX2 kernel's panels, those (and no data).
struct Operand<'a, T> {
    data: &'a [T],
    layout: &'a Layout,
    rs: isize,
    cs: isize,
    packed: Option<&'a PackedB>,
}

fn operand<'a, T>(data: &'a [T], layout: &'a Layout) -> Operand<'a, T> {
    let r = layout.rank();
    Operand {
        data,
        layout,
        rs: layout.strides[r - 2] as isize,
        cs: layout.strides[r - 1] as isize,
        packed: None,
    }
}

/// Run gemm over every batch of `a` × `b` into a contiguous output.
///
/// With `bias` (n values), each block of the output gets the bias added right after gemm
/// writes it, on the same task, while the block is still in cache; then `act`, then `res` (a
/// residual laid out as the output: batch · m · n values) added the same way.
#[allow(clippy::too_many_arguments)]
fn gemm_batched<T: Float>(
    a: Operand<T>,
    b: Operand<T>,
    d: Dims,
    one: T,
    zero: T,
    bias: Option<&[T]>,
    act: Option<RowMap<T>>,
    res: Option<&[T]>,
) -> Vec<T> {
    let len = d.batch * d.m * d.n;
    if len == 0 || d.k == 0 {
        // an empty sum is zero (plus the bias, through the activation)
        let mut out = crate::storage::alloc_out::<T>(len);
        if let Some(bias) = bias {
            for row in out.chunks_mut(d.n.max(1)) {
                row.copy_from_slice(bias);
            }
        }
        if let Some(act) = act {
            act(&mut out);
        }
        if let Some(res) = res {
            add_row(&mut out, res);
        }
        return out;
    }
    // x[.., m, k] × w[k, n] (w broadcast over the batch): one gemm over batch·m rows when the
    // rows of `a` are evenly spaced across its batch dims, instead of `batch` small gemms
    if d.batch > 1 && broadcast_batch(b.layout) {
        if let Some(rs) = uniform_rows(a.layout) {
            let rows = Operand { rs, ..a };
            let folded = Dims {
                batch: 1,
                m: d.batch * d.m,
                ..d
            };
            return gemm_batched(rows, b, folded, one, zero, bias, act, res);
        }
    }
    if b.packed.is_none() {
        if let Some(out) = few_rows(&a, &b, d, bias, act, res) {
            return out;
        }
    }
    // gemm writes every element without reading it (read = false), so the output is a pooled
    // buffer with stale values or fresh capacity, never zeroed first; it is only written
    // through pointers until `set_len` below
    let mut out = crate::pool::take::<T>(len).unwrap_or_else(|| Vec::with_capacity(len));
    let base = Shared(out.as_mut_ptr());
    let small = d.m * d.n * d.k < SMALL && d.batch > 1;
    let operands = |bi: usize| {
        // SAFETY: `raw_slice` checked that every element the layouts address lies inside `data`
        let at = |o: &Operand<T>| unsafe { o.data.as_ptr().add(batch_offset(o.layout, bi)) };
        let am = Mat {
            ptr: at(&a),
            cs: a.cs,
            rs: a.rs,
        };
        let bm = match b.packed {
            // a packed weight is the whole matrix, the same for every batch
            Some(p) => Rhs::Packed(p),
            None => Rhs::Mat(Mat {
                ptr: at(&b),
                cs: b.cs,
                rs: b.rs,
            }),
        };
        (am, bm)
    };
    let shape = (d.m, d.n, d.k);
    let out_at = |bi: usize| Dst {
        // SAFETY: batch bi's m·n elements lie inside the len = batch·m·n of `out`'s capacity
        ptr: unsafe { base.get().add(bi * d.m * d.n) },
        rs: d.n,
        read: false,
        alpha: zero,
        beta: one,
    };
    // SAFETY (the epilogue): gemm has written the block's rows × cols elements at dst, which
    // lies inside `out` (so the residual's elements at the same offset exist)
    let add_bias = |dst: Dst<T>, c0: usize, rows: usize, cols: usize| unsafe {
        if let Some(bias) = bias {
            add_rows(dst, &bias[c0..c0 + cols], rows)
        }
        let rows_after = if act.is_some() || res.is_some() {
            rows
        } else {
            0
        };
        for r in 0..rows_after {
            let row = std::slice::from_raw_parts_mut(dst.ptr.add(r * dst.rs), cols);
            if let Some(act) = act {
                act(row);
            }
            if let Some(res) = res {
                let at = dst.ptr.add(r * dst.rs).offset_from(base.get()) as usize;
                add_row(row, &res[at..at + cols]);
            }
        }
    };
    if small {
        crate::par::for_each(d.batch, |bi| {
            let (am, bm) = operands(bi);
            let dst = out_at(bi);
            // SAFETY: a and b address m × k and k × n elements inside their data; batch bi's
            // m·n output elements are written by this task only
            unsafe { rhs_block(shape, dst, am, bm, 0) };
            add_bias(dst, 0, d.m, d.n);
        });
    } else {
        for bi in 0..d.batch {
            let (am, bm) = operands(bi);
            // SAFETY: as above
            unsafe { gemm_team(shape, out_at(bi), am, bm, &add_bias) }
        }
    }
    // SAFETY: every one of the len elements was written above (gemm writes its whole output)
    unsafe { out.set_len(len) };
    out
}

/// `PLUMB_CPU_ROWS=0`: products of few rows go to the gemm crate (on widened copies for f16 and
/// bf16) instead of Plumb's kernels for them (`matmul_rows.rs`, `matmul_widen.rs`); read once.
pub(crate) fn rows_kernels_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("PLUMB_CPU_ROWS").is_ok_and(|v| v == "0"))
}

/// f32 with few rows of `a` over a row-major `b` (a linear layer at batch one):
/// [`matmul_rows`](super::matmul_rows) reads `b` where it lies instead of packing it.
/// `PLUMB_CPU_ROWS=0` leaves every product to the gemm crate ([`rows_kernels_off`]).
fn few_rows<T: Float>(
    a: &Operand<T>,
    b: &Operand<T>,
    d: Dims,
    bias: Option<&[T]>,
    act: Option<RowMap<T>>,
    res: Option<&[T]>,
) -> Option<Vec<T>> {
    use super::matmul_rows::{applies, Rows, B};
    if d.batch != 1 || a.cs != 1 || b.cs != 1 || !applies(d.m, d.k, d.n) || rows_kernels_off() {
        return None;
    }
    let (lda, ldb) = (usize::try_from(a.rs).ok()?, usize::try_from(b.rs).ok()?);
    let rows = Rows {
        a: as_f32(a.data)?.get(a.layout.offset..)?,
        lda,
        b: B::Rows(as_f32(b.data)?.get(b.layout.offset..)?),
        ldb,
        m: d.m,
        k: d.k,
        n: d.n,
    };
    rows_product(rows, bias, act, res)
}

/// `x` as the f32 slice it is where T is f32, else `None`.
fn as_f32<T: 'static>(x: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>())
        // SAFETY: T is f32, so this is the same slice
        .then(|| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const f32, x.len()) })
}

/// [`matmul_rows`](super::matmul_rows::matmul_rows) with a linear layer's epilogue in T, where T
/// is f32 (`None` for any other T, or where the kernel declines the operands).
pub(super) fn rows_product<T: Float>(
    x: super::matmul_rows::Rows,
    bias: Option<&[T]>,
    act: Option<RowMap<T>>,
    res: Option<&[T]>,
) -> Option<Vec<T>> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: T is f32 (checked above): the same row map, and below the same vector
    let act = act.map(|g| unsafe { std::mem::transmute::<RowMap<T>, RowMap<f32>>(g) });
    let (bias, res) = (bias.and_then(as_f32), res.and_then(as_f32));
    let out = super::matmul_rows::matmul_rows(x, bias, act, res)?;
    Some(unsafe { std::mem::transmute::<Vec<f32>, Vec<T>>(out) })
}

/// `dst[r, c] += bias[c]` for `rows` rows of `bias.len()` columns.
///
/// # Safety
/// `dst` addresses rows × bias.len() initialized elements that nothing else touches.
unsafe fn add_rows<T: Float>(dst: Dst<T>, bias: &[T], rows: usize) {
    for r in 0..rows {
        add_row(
            std::slice::from_raw_parts_mut(dst.ptr.add(r * dst.rs), bias.len()),
            bias,
        );
    }
}

#[inline(always)]
fn add_row_body<T: Float>(row: &mut [T], bias: &[T]) {
    for (o, &b) in row.iter_mut().zip(bias) {
        *o = T::from_acc(o.to_acc() + b.to_acc());
    }
}

multiversion!(
    /// `row[c] += bias[c]`, compiled for the CPU's SIMD level.
    fn add_row[T: Float](row: &mut [T], bias: &[T]) = add_row_body[T]
);

/// A strided matrix operand for the gemm crate: first element, column and row strides.
#[derive(Clone, Copy)]
pub struct Mat<T> {
    pub ptr: *const T,
    pub cs: isize,
    pub rs: isize,
}

/// Where a gemm call writes: `dst = alpha·dst + beta·a·b` into m rows of n (row stride `rs`,
/// column stride 1), dst read only when `read`.
#[derive(Clone, Copy)]
pub struct Dst<T> {
    pub ptr: *mut T,
    pub rs: usize,
    pub read: bool,
    pub alpha: T,
    pub beta: T,
}

/// One gemm call on this thread: the `gemm` crate, or for large f32 blocks with contiguous rows
/// of `b` on an AVX2-only CPU Plumb's AVX2 kernel ([`matmul_f32_avx2`](super::matmul_f32_avx2)).
///
/// # Safety
/// `a` addresses m × k and `b` k × n readable elements, `dst` m × n writable ones that nothing
/// else touches during the call.
pub unsafe fn gemm_block<T: Elem>(
    (m, n, k): (usize, usize, usize),
    d: Dst<T>,
    a: Mat<T>,
    b: Mat<T>,
) {
    // rows of b contiguous (weights are stored so, as are square benchmarks): a transposed b
    // (attention's keys) it would gather column by column
    if TypeId::of::<T>() == TypeId::of::<f32>()
        && b.cs == 1
        && super::matmul_f32_avx2::applies(m, n, k)
    {
        // T is f32: the same pointers and values
        let f = |m: Mat<T>| Mat {
            ptr: m.ptr as *const f32,
            cs: m.cs,
            rs: m.rs,
        };
        return super::matmul_f32_avx2::sgemm((m, n, k), f32_dst(d), f(a), f(b));
    }
    gemm::gemm(
        m,
        n,
        k,
        d.ptr,
        1,
        d.rs as isize,
        d.read,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        d.alpha,
        d.beta,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// The right-hand side of a product: a strided matrix, or an f32 weight packed once into the
/// AVX2 kernel's panels ([`PackedB`]).
#[derive(Clone, Copy)]
pub enum Rhs<'a, T> {
    Mat(Mat<T>),
    Packed(&'a PackedB),
}

/// [`gemm_block`] on columns `c0 ..` of `b`, or [`sgemm_packed`](super::matmul_f32_avx2::sgemm_packed)
/// for a packed one.
///
/// # Safety
/// As [`gemm_block`] for the columns `c0 .. c0 + n` of `b`; a packed `b` only with T = f32,
/// `c0` a multiple of 16 and `c0 + n` at most its columns.
unsafe fn rhs_block<T: Elem>(
    (m, n, k): (usize, usize, usize),
    d: Dst<T>,
    a: Mat<T>,
    b: Rhs<T>,
    c0: usize,
) {
    match b {
        Rhs::Mat(b) => {
            let b = Mat {
                ptr: b.ptr.offset(c0 as isize * b.cs),
                ..b
            };
            gemm_block((m, n, k), d, a, b)
        }
        Rhs::Packed(p) => {
            debug_assert!(TypeId::of::<T>() == TypeId::of::<f32>());
            let a = Mat {
                ptr: a.ptr as *const f32,
                cs: a.cs,
                rs: a.rs,
            };
            super::matmul_f32_avx2::sgemm_packed((m, n, k), f32_dst(d), a, p, c0)
        }
    }
}

/// `d` as the f32 it is.
///
/// # Safety
/// T is f32.
unsafe fn f32_dst<T>(d: Dst<T>) -> Dst<f32> {
    Dst {
        ptr: d.ptr as *mut f32,
        rs: d.rs,
        read: d.read,
        alpha: *(&d.alpha as *const T as *const f32),
        beta: *(&d.beta as *const T as *const f32),
    }
}

/// [`gemm_block`] split into a grid of blocks (see [`grid`]), one task per block on the team;
/// `after(block dst, first column, rows, columns)` runs on the same task once gemm wrote it.
///
/// # Safety
/// As [`gemm_block`].
pub unsafe fn gemm_team<T: Elem>(
    (m, n, k): (usize, usize, usize),
    d: Dst<T>,
    a: Mat<T>,
    b: Rhs<T>,
    after: &(dyn Fn(Dst<T>, usize, usize, usize) + Sync),
) {
    let (rb, cb) = grid(m, n, crate::par::threads());
    let (rper, cper) = (m.div_ceil(rb).max(1), n.div_ceil(cb).next_multiple_of(16));
    let (rb, cb) = (m.div_ceil(rper), n.div_ceil(cper));
    let shared = Shared((d, a, b));
    crate::par::for_each(rb * cb, |t| {
        let (d, a, b) = shared.get();
        let (r0, c0) = (t / cb * rper, t % cb * cper);
        let block = (rper.min(m - r0), cper.min(n - c0), k);
        let d = Dst {
            ptr: d.ptr.add(r0 * d.rs + c0),
            ..d
        };
        let a = Mat {
            ptr: a.ptr.offset(r0 as isize * a.rs),
            ..a
        };
        // SAFETY: the caller's promise, restricted to this task's rows and columns, which no
        // other task writes
        rhs_block(block, d, a, b, c0);
        after(d, c0, block.0, block.1)
    });
}

/// Pointers handed to team tasks: each task reads through them and writes its own block.
struct Shared<X>(X);
// SAFETY: see gemm_team and gemm_batched: reads are shared, writes disjoint, and the tasks end
// before the caller goes on
unsafe impl<X> Sync for Shared<X> {}
impl<X: Copy> Shared<X> {
    fn get(&self) -> X {
        self.0
    }
}

/// Blocks of rows × blocks of columns to split an m × n output into for `threads` threads:
/// every block packs its rows of a and its columns of b, so the split that packs least
/// (Σ rows packed · k + Σ columns packed · k) wins. Run as one task per block on the team
/// instead of gemm's own rayon parallelism: no hand-off to other threads per call, and a
/// single-threaded gemm per block measured faster at every size on the 2-core build machine
/// (`bench_ops matmul` f32 256 / 512 / 1024 / 2048: 235–254 / 282–290 / 309 / 314–317 →
/// 311 / 314–319 / 318–319 / 320–323 GFLOP/s; MiniLM batch 1, `model_bench`: 110 → 168–175
/// sentences/s).
pub(super) fn grid(m: usize, n: usize, threads: usize) -> (usize, usize) {
    let t = threads.max(1);
    (1..=t)
        .filter(|r| t.is_multiple_of(*r))
        .map(|r| (r, t / r))
        .min_by_key(|&(r, c)| r * n + c * m)
        .unwrap_or((1, 1))
}

/// Every batch dim of `l` (all but the last two) has stride 0 or size 1.
pub(crate) fn broadcast_batch(l: &Layout) -> bool {
    let r = l.rank();
    (0..r - 2).all(|d| l.shape[d] == 1 || l.strides[d] == 0)
}

/// The row stride when every dim but the last steps through memory as one evenly spaced run of
/// rows (batch dims folded into the row dim), else `None`.
pub(crate) fn uniform_rows(l: &Layout) -> Option<isize> {
    let r = l.rank();
    let rs = l.strides[r - 2];
    let mut expect = rs * l.shape[r - 2];
    for d in (0..r - 2).rev() {
        if l.shape[d] == 1 {
            continue;
        }
        if l.strides[d] != expect {
            return None;
        }
        expect *= l.shape[d];
    }
    Some(rs as isize)
}

/// `matmul_f32` / `matmul_f64`, and with `bias` (n values added to every output row, then `act`
/// applied to each row where given, then `res` added: a residual of the output's shape) the
/// fused linear layer: one row times a row-major matrix
/// streams it ([`matvec`](super::matvec::matvec)); few rows of f32 go to
/// [`matmul_rows`](super::matmul_rows); otherwise the views' strides go to gemm as they are, and
/// each gemm block adds its columns of the bias (and applies `act`) once written.
pub fn matmul_gemm<T: Float + gemm_t::One>(
    a: &View,
    b: &View,
    bias: Option<&View>,
    act: Option<RowMap<T>>,
    res: Option<&View>,
) -> Result<Vec<T>> {
    let d = dims(a, b);
    let res = res
        .map(|v| contiguous::<T>("matmul_bias_add", v))
        .transpose()?;
    if let Some(res) = &res {
        if res.len() != d.batch * d.m * d.n {
            return Err(device_err(
                "matmul_bias_add",
                format!(
                    "residual of {} values for a {}x{}x{} output",
                    res.len(),
                    d.batch,
                    d.m,
                    d.n
                ),
            ));
        }
    }
    let bias = bias
        .map(|v| contiguous::<T>("matmul_bias", v))
        .transpose()?;
    if let Some(bias) = &bias {
        if bias.len() != d.n {
            return Err(device_err(
                "matmul_bias",
                format!("bias of {} values for {} output columns", bias.len(), d.n),
            ));
        }
    }
    if let Some(out) =
        super::matmul_strips::f32_product(a, b, d, bias.as_deref(), act, res.as_deref())?
    {
        return Ok(out);
    }
    if let Some(packed) = packed_weight::<T>(b, d) {
        let da = raw_slice::<T>("matmul", a)?;
        let bo = Operand {
            packed: Some(packed),
            ..operand(&[], b.layout)
        };
        return Ok(gemm_batched(
            operand(da, a.layout),
            bo,
            d,
            T::ONE,
            T::ZERO,
            bias.as_deref(),
            act,
            res.as_deref(),
        ));
    }
    if let Some(mut out) = super::matvec::matvec::<T>(a, b, d)? {
        if let Some(bias) = &bias {
            for row in out.chunks_mut(d.n.max(1)) {
                for (o, &b) in row.iter_mut().zip(bias.iter()) {
                    *o = T::from_acc(o.to_acc() + b.to_acc());
                }
            }
        }
        if let Some(act) = act {
            act(&mut out);
        }
        if let Some(res) = &res {
            add_row(&mut out, res);
        }
        return Ok(out);
    }
    let (da, db) = (raw_slice::<T>("matmul", a)?, raw_slice::<T>("matmul", b)?);
    Ok(gemm_batched(
        operand(da, a.layout),
        operand(db, b.layout),
        d,
        T::ONE,
        T::ZERO,
        bias.as_deref(),
        act,
        res.as_deref(),
    ))
}

/// The packed panels behind `b` where `b` is an f32 weight stored so and the view is the whole
/// matrix (k × n row-major, broadcast over any batch dims); `None` otherwise (other views of a
/// packed weight read its row-major copy).
fn packed_weight<'a, T: 'static>(b: &View<'a>, d: Dims) -> Option<&'a PackedB> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    let p = crate::storage::storage_of("matmul", b)
        .ok()?
        .packed_panels()?;
    whole_weight(b, d, (p.k(), p.n())).then_some(p)
}

/// [`packed_weight`] for a bf16 weight packed for the `vdpbf16ps` kernel.
fn packed_weight_bf16<'a>(b: &View<'a>, d: Dims) -> Option<&'a PackedBf16> {
    let p = crate::storage::storage_of("matmul", b)
        .ok()?
        .packed_bf16()?;
    whole_weight(b, d, (p.k(), p.n())).then_some(p)
}

/// Whether `b` views the whole of a packed (k, n) weight: k × n row-major from its start,
/// broadcast over any batch dims.
pub(super) fn whole_weight(b: &View, d: Dims, (k, n): (usize, usize)) -> bool {
    let l = b.layout;
    let r = l.rank();
    (k, n) == (d.k, d.n) && l.offset == 0 && l.strides[r - 2..] == [d.n, 1] && broadcast_batch(l)
}

/// `matmul_f16` / `matmul_bf16`: widen to f32, multiply, round once; one row times a row-major
/// matrix streams it as it is ([`matvec`](super::matvec::matvec), accumulating in f32).
pub fn matmul_half<T: Wide>(a: &View, b: &View) -> Result<Vec<T>> {
    let d = dims(a, b);
    if let Some(out) = dot_bf16(a, b, d, Epilogue::NONE)? {
        return Ok(out);
    }
    if let Some(out) = super::matmul_strips::f16_product(a, b, d, Epilogue::NONE)? {
        return Ok(out);
    }
    // one row (decoding): stream b in its own type, half the bytes of a widened copy
    if let Some(out) = super::matvec::matvec::<T>(a, b, d)? {
        return Ok(out);
    }
    match widened::<T>(a, b, d, Epilogue::NONE)? {
        Some(out) => Ok(out),
        None => widened_copies(a, b, d, Epilogue::NONE),
    }
}

/// bf16 products through `vdpbf16ps` where
/// [`matmul_bf16::selected`](super::matmul_bf16::selected) picks it: any number of rows times a
/// weight packed for it at load, more than [`DOT_MIN_ROWS`] rows otherwise; `None` elsewhere.
/// Fewer rows stream an unpacked weight once ([`widened`], [`matvec`](super::matvec::matvec)),
/// which packing it on every call would read twice.
fn dot_bf16<T: Wide>(a: &View, b: &View, d: Dims, epi: Epilogue<T>) -> Result<Option<Vec<T>>> {
    if TypeId::of::<T>() != TypeId::of::<half::bf16>() || !super::matmul_bf16::selected() {
        return Ok(None);
    }
    let packed = packed_weight_bf16(b, d);
    if packed.is_none() && d.batch * d.m <= DOT_MIN_ROWS {
        return Ok(None);
    }
    super::matmul_bf16::matmul(a, b, d, epi, packed)
}

/// The product of widened f32 copies of `a` and `b` through the gemm crate, with `epi` (its bias
/// and residual as f32 values) applied to each block of the f32 product while it is in cache,
/// rounded once.
fn widened_copies<T: Wide>(a: &View, b: &View, d: Dims, epi: Epilogue<f32>) -> Result<Vec<T>> {
    let af = T::slice_to_f32(&contiguous::<T>("matmul", a)?);
    let la = Layout::contiguous(a.shape());
    // a weight broadcast over the batch is widened once, not once per batch
    let (bf, lb) = if broadcast_batch(b.layout) {
        let r = b.layout.rank();
        let one = Layout {
            shape: b.shape()[r - 2..].to_vec(),
            strides: b.layout.strides[r - 2..].to_vec(),
            offset: b.layout.offset,
        };
        let m = View { layout: &one, ..*b };
        let mut lb = Layout::contiguous(b.shape());
        lb.strides[..r - 2].iter_mut().for_each(|s| *s = 0);
        (T::slice_to_f32(&contiguous::<T>("matmul", &m)?), lb)
    } else {
        let bf = T::slice_to_f32(&contiguous::<T>("matmul", b)?);
        (bf, Layout::contiguous(b.shape()))
    };
    let out = gemm_batched(
        operand(&af, &la),
        operand(&bf, &lb),
        d,
        1f32,
        0f32,
        epi.bias,
        epi.act,
        epi.res,
    );
    let narrowed = T::slice_from_f32(&out);
    // the widened copies go back to the buffer pool: fresh ones cost page faults on every call
    for v in [af, bf, out] {
        crate::pool::give(<f32 as crate::storage::Elem>::wrap(v));
    }
    Ok(narrowed)
}

/// `matmul_bias` (then `act`, then + `res`) for f16 / bf16 as one op: the bias, the activation
/// and the residual are applied to the f32 sums, which are rounded once (the composed ops round
/// after each). bf16 goes through [`dot_bf16`] where it applies; otherwise few rows go through
/// [`widened`], more through [`widened_copies`]. `None` for one row (its product streams the
/// weight, [`matvec`](super::matvec::matvec)) and for a bias or residual of another size than
/// the output's: the caller composes the ops (and reports a wrong size).
pub fn linear_half<T: Wide>(
    a: &View,
    b: &View,
    bias: &View,
    act: Option<UnaryOp>,
    res: Option<&View>,
) -> Result<Option<Vec<T>>> {
    let d = dims(a, b);
    // one row streams an unpacked weight (matvec) and adds the rest after
    let packed =
        packed_weight_bf16(b, d).is_some() || super::matmul_strips::packed_f16(b, d).is_some();
    if d.batch * d.m < 2 && !packed {
        return Ok(None);
    }
    let bias = contiguous::<T>("matmul_bias", bias)?;
    let res = res
        .map(|v| contiguous::<T>("matmul_bias_add", v))
        .transpose()?;
    if bias.len() != d.n || res.as_ref().is_some_and(|r| r.len() != d.batch * d.m * d.n) {
        return Ok(None);
    }
    let act = act.map(super::unary::row_map::<f32>);
    let epi = Epilogue {
        bias: Some(&bias),
        act: act.as_deref(),
        res: res.as_deref(),
    };
    if let Some(out) = dot_bf16(a, b, d, epi)? {
        return Ok(Some(out));
    }
    if let Some(out) = super::matmul_strips::f16_product(a, b, d, epi)? {
        return Ok(Some(out));
    }
    if d.batch * d.m < 2 {
        return Ok(None);
    }
    if let Some(out) = widened(a, b, d, epi)? {
        return Ok(Some(out));
    }
    let bias = T::slice_to_f32(&bias);
    let res = res.map(|r| T::slice_to_f32(&r));
    let epi = Epilogue {
        bias: Some(&bias),
        act: act.as_deref(),
        res: res.as_deref(),
    };
    widened_copies(a, b, d, epi).map(Some)
}

/// [`matmul_widen`] for products of few rows (at most [`FEW_ROWS`] after folding a weight
/// broadcast over the batch into one matrix), per batch; `None` where it does not apply here,
/// for more rows, or where the batches are too small for it to pay.
///
/// With few rows, widening the whole of `b` (a weight) on every call costs more than the product:
/// `b` is widened in L2-sized panels instead. With many, the gemm crate on widened copies ran as
/// fast or faster here (see `matmul_widen.rs`). `PLUMB_CPU_ROWS=0` turns it off
/// ([`rows_kernels_off`]).
///
/// `epi` (the fused linear layer's bias, activation and residual) is taken with one batch only
/// (after folding); with more, `None`.
fn widened<T: Wide>(a: &View, b: &View, d: Dims, epi: Epilogue<T>) -> Result<Option<Vec<T>>> {
    if !super::matmul_widen::applies() || d.m * d.n * d.k == 0 || rows_kernels_off() {
        return Ok(None);
    }
    let (da, db) = (raw_slice::<T>("matmul", a)?, raw_slice::<T>("matmul", b)?);
    let (oa, ob) = (operand(da, a.layout), operand(db, b.layout));
    let fold = (d.batch > 1 && broadcast_batch(b.layout))
        .then(|| uniform_rows(a.layout))
        .flatten();
    let (batches, m, ars) = match fold {
        Some(rs) => (1, d.batch * d.m, rs),
        None => (d.batch, d.m, oa.rs),
    };
    if m > FEW_ROWS || (batches > 1 && (d.m * d.n * d.k < SMALL || !epi.is_none())) {
        return Ok(None);
    }
    let x = |bi: usize| Strided {
        a: &da[batch_offset(a.layout, bi)..],
        ars: ars as usize,
        acs: oa.cs as usize,
        b: &db[batch_offset(b.layout, bi)..],
        brs: ob.rs as usize,
        bcs: ob.cs as usize,
        m,
        k: d.k,
        n: d.n,
    };
    if batches == 1 {
        return Ok(matmul_widen(x(0), epi));
    }
    let mut out = Vec::with_capacity(d.batch * d.m * d.n);
    for bi in 0..batches {
        let Some(c) = matmul_widen(x(bi), Epilogue::NONE) else {
            return Ok(None);
        };
        out.extend_from_slice(&c);
        crate::pool::give(T::wrap(c));
    }
    Ok(Some(out))
}

/// The constants gemm needs, for the two types it is called with directly.
pub mod gemm_t {
    pub trait One: Copy + Send + Sync + Default + 'static {
        const ONE: Self;
        const ZERO: Self;
    }
    impl One for f32 {
        const ONE: f32 = 1.0;
        const ZERO: f32 = 0.0;
    }
    impl One for f64 {
        const ONE: f64 = 1.0;
        const ZERO: f64 = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::grid;

    #[test]
    fn grid_splits_the_longer_side_and_covers_every_thread() {
        assert_eq!(grid(1536, 384, 2), (2, 1));
        assert_eq!(grid(48, 1536, 2), (1, 2));
        assert_eq!(grid(500, 500, 1), (1, 1));
        assert_eq!(grid(500, 500, 0), (1, 1));
        let (r, c) = grid(100, 100, 6);
        assert_eq!(r * c, 6);
        assert!(
            r >= 2 && c >= 2,
            "a square output splits both ways: {r} x {c}"
        );
    }
}
