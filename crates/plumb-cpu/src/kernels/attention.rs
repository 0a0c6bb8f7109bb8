//! `attention_{dtype}`: fused scaled-dot-product attention on strided views, never forming the
//! [b, h, s, t] score tensor or repeating kv heads. Keys and values may be narrower than the
//! queries (an f16 or bf16 KV cache under f32 queries), widened as they are read. One task per (batch, head, block of query
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
pub fn attention_float<T: Float, K: Float<A = T::A>>(
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
        return many_rows::<T, K>(q, k, v, mask, args);
    }
    if !unit(ql) || !unit(kl) || !unit(vl) {
        return Ok(None);
    }
    let (qd, kd, vd) = (
        raw_slice::<T>("attention", q)?,
        raw_slice::<K>("attention", k)?,
        raw_slice::<K>("attention", v)?,
    );
    let md = match mask {
        Some(m) => Some((raw_slice::<T>("attention", m)?, m.layout)),
        None => None,
    };
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
    // a long cache: its keys split across the team (attention_split.rs)
    if let Some(out) = super::attention_split::attention_split(&ctx, b, s) {
        return Ok(Some(T::vec_from_f32(out)));
    }
    let mut out = crate::storage::alloc_out::<T>(b * h * s * d);
    if out.is_empty() {
        return Ok(Some(out));
    }
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
fn many_rows<T: Float, K: Float<A = T::A>>(
    q: &View,
    k: &View,
    v: &View,
    mask: Option<&View>,
    args: AttentionArgs,
) -> Result<Option<Vec<T>>> {
    use super::attention_f32::attention_f32;
    let f32_or_half = |f32: bool, half: bool| f32 || half;
    if !f32_or_half(is_f32::<T>(), T::IS_HALF) || !f32_or_half(is_f32::<K>(), K::IS_HALF) {
        return Ok(None);
    }
    let (qw, kw, vw) = (wide::<T>(q)?, wide::<K>(k)?, wide::<K>(v)?);
    let mw = match mask {
        Some(m) => Some((T::cow_to_f32(raw_slice::<T>("attention", m)?), m.layout)),
        None => None,
    };
    let out = attention_f32(
        (&qw.0, &qw.1),
        (&kw.0, &kw.1),
        (&vw.0, &vw.1),
        mw.as_ref().map(|(d, l)| (&d[..], *l)),
        args,
    );
    Ok(Some(T::vec_from_f32(out)))
}

pub(super) fn is_f32<E: 'static>() -> bool {
    TypeId::of::<E>() == TypeId::of::<f32>()
}

/// A view's values as f32 under a layout: an f32 view's storage as it lies, a half view's
/// elements widened into a contiguous copy.
fn wide<'a, E: Float>(x: &View<'a>) -> Result<(std::borrow::Cow<'a, [f32]>, Layout)> {
    if is_f32::<E>() {
        let raw = raw_slice::<E>("attention", x)?;
        return Ok((E::cow_to_f32(raw), x.layout.clone()));
    }
    let c = crate::storage::contiguous::<E>("attention", x)?;
    Ok((
        std::borrow::Cow::Owned(E::slice_to_f32(&c)),
        Layout::contiguous(x.shape()),
    ))
}

/// What every task reads.
pub(super) struct Ctx<'a, T: Float, K: Float> {
    pub(super) q: (&'a [T], &'a Layout),
    pub(super) k: (&'a [K], &'a Layout),
    pub(super) v: (&'a [K], &'a Layout),
    pub(super) mask: Option<(&'a [T], &'a Layout)>,
    pub(super) h: usize,
    pub(super) rep: usize,
    pub(super) t: usize,
    pub(super) d: usize,
    pub(super) scale: <T as Float>::A,
    pub(super) causal: bool,
    pub(super) offset: usize,
}

/// Query rows i0.. of (batch, head) `bh` into `o`.
#[inline(always)]
fn rows_task_body<T: Float, K: Float<A = T::A>, M: MulAdd>(
    o: &mut [T],
    c: &Ctx<'_, T, K>,
    bh: usize,
    i0: usize,
) {
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
        if !scores_fast(c, qrow, (bi, kh), &mut p[..visible]) {
            for (j, pj) in p[..visible].iter_mut().enumerate() {
                let krow = &c.k.0[at(c.k.1, bi, kh, j)..][..d];
                *pj = dot::<T, K>(qrow, krow) * c.scale;
            }
        }
        let mut m = T::A::NEG_INF;
        for (j, pj) in p[..visible].iter_mut().enumerate() {
            if let Some((mv, ml)) = c.mask {
                *pj += mv[at(ml, bi, hi, i) + j * ml.strides[3]].to_acc();
            }
            m = m.max_nan(*pj);
        }
        if !m.is_finite() {
            orow.fill(T::from_acc(T::A::NAN));
            continue;
        }
        let inv = T::A::ONE / super::softmax::exp_sum_in_place::<T::A, M>(&mut p[..visible], m);
        if values_fast(c, &p[..visible], (bi, kh), inv, orow) {
            continue;
        }
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
    fn rows_task[T: Float, K: Float<A = T::A>](o: &mut [T], c: &Ctx<'_, T, K>, bh: usize, i0: usize) = rows_task_body[T, K] + MulAdd
);

/// `out[j] = scale · q·kⱼ` for the keys j < out.len() of kv head `kh` in batch `bi`, through
/// [`scores_avx512`] where it applies (f32 queries, keys f32, f16 or bf16, head size a
/// multiple of 16, AVX-512): `false` where it does not, for the caller's generic loop.
fn scores_fast<T: Float, K: Float<A = T::A>>(
    c: &Ctx<'_, T, K>,
    q: &[T],
    (bi, kh): (usize, usize),
    out: &mut [T::A],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let (d, n) = (c.d, out.len());
        let Some((k0, ks)) =
            avx512_rows::<T, K>(c.k, (bi, kh), n, d, usize::MAX).filter(|_| q.len() == d)
        else {
            return false;
        };
        // SAFETY: T and T::A are f32 and K one of the element types `scores_avx512` reads
        // (avx512_rows), the n key rows lie inside k and AVX-512F is present; q holds d values.
        unsafe {
            let q = std::slice::from_raw_parts(q.as_ptr() as *const f32, d);
            let out = std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, n);
            scores_avx512(q, c.k.0.as_ptr().add(k0), ks, c.scale.to_f64() as f32, out);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (c, q, bi, kh, out);
        false
    }
}

/// Where the AVX-512 loops apply to `n` rows of kv head `kh` in batch `bi` of `x`: the offset
/// of the first row and the rows' stride. `None` unless T (the queries) and its accumulator are
/// f32 and K (the keys and values) f32, f16 or bf16, the head size `d` a multiple of 16 up to
/// `max_d`, n ≥ 1, the rows inside the data, and the kernels' level AVX-512.
#[cfg(target_arch = "x86_64")]
fn avx512_rows<T: Float, K: Float>(
    x: (&[K], &Layout),
    (bi, kh): (usize, usize),
    n: usize,
    d: usize,
    max_d: usize,
) -> Option<(usize, usize)> {
    use super::simd::{level, Level};
    if !f32_queries::<T>()
        || !widens::<K>()
        || !d.is_multiple_of(16)
        || d > max_d
        || n == 0
        || level() != Level::V4
    {
        return None;
    }
    let (r0, rs) = (at(x.1, bi, kh, 0), x.1.strides[2]);
    (r0 + (n - 1) * rs + d <= x.0.len()).then_some((r0, rs))
}

pub(super) fn is_bf16<E: 'static>() -> bool {
    TypeId::of::<E>() == TypeId::of::<half::bf16>()
}

/// Whether T (the queries) and its accumulator are f32, as the AVX-512 loops take them.
pub(super) fn f32_queries<T: Float>() -> bool {
    is_f32::<T>() && is_f32::<T::A>()
}

/// Whether [`load16`] reads K (keys and values): f32, f16 or bf16.
pub(super) fn widens<K: 'static>() -> bool {
    is_f32::<K>() || TypeId::of::<K>() == TypeId::of::<half::f16>() || is_bf16::<K>()
}

/// `o = inv · Σⱼ pⱼ·vⱼ` over the value rows of kv head `kh` in batch `bi`, through
/// [`values_avx512`] where it applies (as [`scores_fast`], head size up to 128): `false` where
/// it does not, for the caller's generic loop.
fn values_fast<T: Float, K: Float<A = T::A>>(
    c: &Ctx<'_, T, K>,
    p: &[T::A],
    (bi, kh): (usize, usize),
    inv: T::A,
    o: &mut [T],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let (d, n) = (c.d, p.len());
        let Some((v0, vs)) =
            avx512_rows::<T, K>(c.v, (bi, kh), n, d, 16 * VALUE_REGS).filter(|_| o.len() == d)
        else {
            return false;
        };
        // SAFETY: T and T::A are f32 and K one of the element types `values_avx512` reads, the n
        // value rows lie inside v, d is a multiple of 16 up to 16·VALUE_REGS and AVX-512F is
        // present (avx512_rows); o holds d values.
        unsafe {
            let p = std::slice::from_raw_parts(p.as_ptr() as *const f32, n);
            let o = std::slice::from_raw_parts_mut(o.as_mut_ptr() as *mut f32, d);
            values_avx512(p, c.v.0.as_ptr().add(v0), vs, inv.to_f64() as f32, o);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (c, p, bi, kh, inv, o);
        false
    }
}

/// Registers of sums [`values_avx512`] holds: head sizes up to 128.
pub(super) const VALUE_REGS: usize = 8;

/// 16 values of type `$k` (f32, f16 or bf16) at `$p` as 16 f32 lanes (a macro, so that it
/// compiles inside the caller's target features).
#[cfg(target_arch = "x86_64")]
macro_rules! load16 {
    ($k:ty, $p:expr) => {{
        let p = $p;
        if $crate::kernels::attention::is_f32::<$k>() {
            _mm512_loadu_ps(p as *const f32)
        } else if $crate::kernels::attention::is_bf16::<$k>() {
            // bf16 is the upper half of an f32
            let h = _mm256_loadu_si256(p as *const __m256i);
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        } else {
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
        }
    }};
}
#[cfg(target_arch = "x86_64")]
pub(super) use load16;

/// `o = inv · Σⱼ p[j]·vⱼ`, value row j at `v + j·vs` (elements of K: f32, f16 or bf16),
/// `o.len()` values each (a multiple of 16, at most 16·[`VALUE_REGS`]): the sums stay in
/// registers across the rows, where the generic loop loaded and stored them for every row.
///
/// # Safety
/// AVX-512F present; K is f32, f16 or bf16; `v` addresses `p.len()` rows of `o.len()` values,
/// `vs` apart; `o.len()` as above.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,f16c")]
unsafe fn values_avx512<K: 'static>(p: &[f32], v: *const K, vs: usize, inv: f32, o: &mut [f32]) {
    use std::arch::x86_64::*;
    let regs = o.len() / 16;
    let mut acc = [_mm512_setzero_ps(); VALUE_REGS];
    for (j, &pj) in p.iter().enumerate() {
        let (w, row) = (_mm512_set1_ps(pj), v.add(j * vs));
        for (r, a) in acc.iter_mut().enumerate().take(regs) {
            *a = _mm512_fmadd_ps(w, load16!(K, row.add(16 * r)), *a);
        }
    }
    let s = _mm512_set1_ps(inv);
    for (r, a) in acc.iter().enumerate().take(regs) {
        _mm512_storeu_ps(o.as_mut_ptr().add(16 * r), _mm512_mul_ps(*a, s));
    }
}

/// `out[j] = scale · q·kⱼ`, key j at `k + j·ks` (elements of K: f32, f16 or bf16), `q.len()`
/// (a multiple of 16) values each: two accumulators of 16 lanes per key, summed as a tree
/// (`_mm512_reduce_add_ps`). The generic loop summed each key's lanes one after another, 16
/// dependent adds that the decode profile showed as most of attention's time.
///
/// # Safety
/// AVX-512F present; K is f32, f16 or bf16; `k` addresses `out.len()` rows of `q.len()`
/// values, `ks` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,f16c")]
unsafe fn scores_avx512<K: 'static>(
    q: &[f32],
    k: *const K,
    ks: usize,
    scale: f32,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let d = q.len();
    let qp = q.as_ptr();
    for (j, o) in out.iter_mut().enumerate() {
        let kr = k.add(j * ks);
        let (mut a, mut b) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut x = 0;
        while x + 32 <= d {
            a = _mm512_fmadd_ps(_mm512_loadu_ps(qp.add(x)), load16!(K, kr.add(x)), a);
            b = _mm512_fmadd_ps(
                _mm512_loadu_ps(qp.add(x + 16)),
                load16!(K, kr.add(x + 16)),
                b,
            );
            x += 32;
        }
        if x < d {
            a = _mm512_fmadd_ps(_mm512_loadu_ps(qp.add(x)), load16!(K, kr.add(x)), a);
        }
        *o = _mm512_reduce_add_ps(_mm512_add_ps(a, b)) * scale;
    }
}

/// q·k in the accumulator type, in 16 lanes so it vectorises.
#[inline(always)]
fn dot<T: Float, K: Float<A = T::A>>(a: &[T], b: &[K]) -> T::A {
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
