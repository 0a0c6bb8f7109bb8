//! `attention_{dtype}`: fused scaled-dot-product attention on strided views, never forming the
//! [b, h, s, t] score tensor or repeating kv heads. One task per (batch, head, block of query
//! rows); per query row: scores = scale · q·kⱼ + mask, causal cut, stable softmax (accumulated
//! in the accumulator type), then Σ pⱼ·vⱼ. A row whose max score is not finite (all masked, or
//! a NaN/+∞) is NaN, like the composed softmax.

use super::{Acc, Float};
use crate::storage::raw_slice;
use plumb_core::math::MulAdd;
use plumb_core::{AttentionArgs, Layout, Result, View};
use std::any::TypeId;

/// Element offset of [b, h, i, 0] in a rank-4 layout.
pub(super) fn at(l: &Layout, b: usize, h: usize, i: usize) -> usize {
    l.offset + b * l.strides[0] + h * l.strides[1] + i * l.strides[2]
}

/// Query rows per task.
const ROWS: usize = 16;

/// More than `ROWS` query rows go to [`super::attention_f32`] (f16 / bf16 widened to f32); f64
/// there, or a view whose last dim is not contiguous here, gives `None` (core then composes
/// the op).
pub fn attention_float<T: Float>(
    q: &View,
    k: &View,
    v: &View,
    mask: Option<&View>,
    args: AttentionArgs,
) -> Result<Option<Vec<T>>> {
    let (ql, kl, vl) = (q.layout, k.layout, v.layout);
    let (b, h, s, d) = (ql.shape[0], ql.shape[1], ql.shape[2], ql.shape[3]);
    let (hkv, t) = (kl.shape[1], kl.shape[2]);
    let unit = |l: &Layout| l.shape[3] <= 1 || l.strides[3] == 1;
    if hkv == 0 || h % hkv != 0 {
        return Ok(None);
    }
    // many query rows (prefill, encoders) run faster through gemm (measured on MiniLM: the
    // per-row loop 144 sentences/s against 192 for gemm + softmax as separate ops); the loop
    // below wins when decoding a few rows over a long cache
    if s > ROWS {
        return many_rows::<T>(q, k, v, mask, args);
    }
    if !unit(ql) || !unit(kl) || !unit(vl) {
        return Ok(None);
    }
    let (qd, kd, vd) = (
        raw_slice::<T>("attention", q)?,
        raw_slice::<T>("attention", k)?,
        raw_slice::<T>("attention", v)?,
    );
    let md = match mask {
        Some(m) => Some((raw_slice::<T>("attention", m)?, m.layout)),
        None => None,
    };
    let mut out = crate::storage::alloc_out::<T>(b * h * s * d);
    if out.is_empty() {
        return Ok(Some(out));
    }
    let ctx = Ctx {
        q: (qd, ql),
        k: (kd, kl),
        v: (vd, vl),
        mask: md,
        h,
        rep: h / hkv,
        t,
        d,
        scale: T::A::from_f64(args.scale),
        causal: args.causal,
        offset: t.saturating_sub(s), // causal: row i sees keys 0..=i + offset
    };
    // tasks of up to ROWS query rows of one (batch, head), on the decode team (see team.rs)
    let blocks = s.div_ceil(ROWS);
    let optr = crate::team::SyncPtr::new(&mut out);
    crate::par::for_each(b * h * blocks, |task| {
        let (bh, i0) = (task / blocks, task % blocks * ROWS);
        let rows = ROWS.min(s - i0);
        // SAFETY: rows i0 .. i0 + rows of (batch, head) bh lie inside out and belong to this
        // task only.
        let o = unsafe { optr.slice((bh * s + i0) * d, rows * d) };
        rows_task(o, &ctx, bh, i0);
    });
    Ok(Some(out))
}

/// [`super::attention_f32`] on f32 views as they are, on f16 / bf16 views widened to f32 (q, k
/// and v as contiguous copies of their elements, the mask's whole storage under its own layout,
/// as it is usually small and broadcast), rounded once on the way out; f64 is left to core.
fn many_rows<T: Float>(
    q: &View,
    k: &View,
    v: &View,
    mask: Option<&View>,
    args: AttentionArgs,
) -> Result<Option<Vec<T>>> {
    use super::attention_f32::attention_f32;
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        fn raw<'a>(x: &View<'a>) -> Result<(&'a [f32], &'a Layout)> {
            Ok((raw_slice::<f32>("attention", x)?, x.layout))
        }
        let m = mask.map(raw).transpose()?;
        let out = attention_f32(raw(q)?, raw(k)?, raw(v)?, m, args);
        return Ok(Some(T::vec_from_f32(out)));
    }
    if !T::IS_HALF {
        return Ok(None);
    }
    let wide = |x: &View| -> Result<(Vec<f32>, Layout)> {
        let c = crate::storage::contiguous::<T>("attention", x)?;
        Ok((T::slice_to_f32(&c), Layout::contiguous(x.shape())))
    };
    let (qw, kw, vw) = (wide(q)?, wide(k)?, wide(v)?);
    let mw = match mask {
        Some(m) => Some((T::slice_to_f32(raw_slice::<T>("attention", m)?), m.layout)),
        None => None,
    };
    let out = attention_f32(
        (&qw.0, &qw.1),
        (&kw.0, &kw.1),
        (&vw.0, &vw.1),
        mw.as_ref().map(|(d, l)| (&d[..], *l)),
        args,
    );
    Ok(Some(T::slice_from_f32(&out)))
}

/// What every task reads.
struct Ctx<'a, T: Float> {
    q: (&'a [T], &'a Layout),
    k: (&'a [T], &'a Layout),
    v: (&'a [T], &'a Layout),
    mask: Option<(&'a [T], &'a Layout)>,
    h: usize,
    rep: usize,
    t: usize,
    d: usize,
    scale: <T as Float>::A,
    causal: bool,
    offset: usize,
}

/// Query rows i0.. of (batch, head) `bh` into `o`.
#[inline(always)]
fn rows_task_body<T: Float, M: MulAdd>(o: &mut [T], c: &Ctx<'_, T>, bh: usize, i0: usize) {
    let (bi, hi) = (bh / c.h, bh % c.h);
    let kh = hi / c.rep;
    let (t, d) = (c.t, c.d);
    let mut p = vec![T::A::ZERO; t];
    let mut acc = vec![T::A::ZERO; d];
    for (r, orow) in o.chunks_mut(d).enumerate() {
        let i = i0 + r;
        let qrow = &c.q.0[at(c.q.1, bi, hi, i)..][..d];
        let visible = if c.causal {
            (i + c.offset + 1).min(t)
        } else {
            t
        };
        let mut m = T::A::NEG_INF;
        for (j, pj) in p[..visible].iter_mut().enumerate() {
            let krow = &c.k.0[at(c.k.1, bi, kh, j)..][..d];
            let mut sc = dot::<T>(qrow, krow) * c.scale;
            if let Some((mv, ml)) = c.mask {
                sc += mv[at(ml, bi, hi, i) + j * ml.strides[3]].to_acc();
            }
            *pj = sc;
            m = m.max_nan(sc);
        }
        if !m.is_finite() {
            orow.fill(T::from_acc(T::A::NAN));
            continue;
        }
        let inv = T::A::ONE / super::softmax::exp_sum_in_place::<T::A, M>(&mut p[..visible], m);
        acc.fill(T::A::ZERO);
        for (j, &pj) in p[..visible].iter().enumerate() {
            let vrow = &c.v.0[at(c.v.1, bi, kh, j)..][..d];
            for (a, &x) in acc.iter_mut().zip(vrow) {
                *a += pj * x.to_acc();
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = T::from_acc(a * inv);
        }
    }
}

multiversion!(
    /// One task's query rows, compiled for the CPU's SIMD level.
    fn rows_task[T: Float](o: &mut [T], c: &Ctx<'_, T>, bh: usize, i0: usize) = rows_task_body[T] + MulAdd
);

/// q·k in the accumulator type, in 16 lanes so it vectorises.
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T::A {
    let mut lanes = [T::A::ZERO; 16];
    let n8 = a.len() / 16 * 16;
    for (ca, cb) in a[..n8].chunks_exact(16).zip(b[..n8].chunks_exact(16)) {
        for j in 0..16 {
            lanes[j] += ca[j].to_acc() * cb[j].to_acc();
        }
    }
    let mut s = lanes.iter().fold(T::A::ZERO, |x, &y| x + y);
    for (x, y) in a[n8..].iter().zip(&b[n8..]) {
        s += x.to_acc() * y.to_acc();
    }
    s
}
