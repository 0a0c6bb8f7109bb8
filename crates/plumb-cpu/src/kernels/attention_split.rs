//! `attention_{dtype}` for a few query rows over a long KV cache (decoding after a long
//! prompt): each kv head's keys are split into chunks, one team task per (batch, kv head,
//! chunk), as flash-decoding splits them. A task runs every query row of the kv head's query
//! heads (grouped-query attention) over its chunk, so a chunk of keys and values comes from
//! memory once and from L2 for the other heads, where one task per query head read the whole
//! cache once per head and left the threads unbalanced (SmolLM2: 9 heads on 2 threads). Each
//! task keeps, per query row, its chunk's score maximum m, its sum of e^(score − m) and its
//! unnormalised value sums; the rows are then combined: M = max m, L = Σ l·e^(m − M),
//! o = Σ o·e^(m − M) / L. f32 queries only, keys and values f32, f16 or bf16 (widened as they
//! are read), AVX-512; anything else stays with [`super::attention`]'s loop.

#[cfg(target_arch = "x86_64")]
use super::attention::{at, load16, Ctx, VALUE_REGS};
use super::Float;

/// Keys from which the split runs: one chunk's worth. With the threshold moved out of the way,
/// `bench_ops attention_decode_cache` at 128 / 256 / 512 / 1024 keys ran the split at 22.6–22.8
/// / 27.3–27.7 / 30.2–30.3 / 33.0–33.6 GB/s (f32 cache) against 14.8–15.4 / 16.3–16.9 /
/// 17.4–18.7 / 17.7–18.9 for the per-head tasks (BENCHMARKS.md, "The Intel Xeon again").
pub const MIN_KEYS: usize = 128;

/// Fewest keys per chunk.
#[cfg(target_arch = "x86_64")]
const MIN_CHUNK: usize = 128;

/// The attention of [`Ctx`]'s `s` query rows over its keys split into chunks, or `None` where
/// the split does not apply (see the module's doc; fewer than [`MIN_KEYS`] keys).
pub(super) fn attention_split<T: Float, K: Float<A = T::A>>(
    c: &super::attention::Ctx<'_, T, K>,
    b: usize,
    s: usize,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        use super::attention::{f32_queries, widens};
        use super::simd::{level, Level};
        let (d, t) = (c.d, c.t);
        let fits = |x: (&[K], &plumb_core::Layout)| {
            (0..b).all(|bi| {
                (0..c.h / c.rep)
                    .all(|kh| at(x.1, bi, kh, 0) + (t - 1) * x.1.strides[2] + d <= x.0.len())
            })
        };
        if !f32_queries::<T>()
            || !widens::<K>()
            || t < MIN_KEYS
            || d == 0
            || !d.is_multiple_of(16)
            || d > 16 * VALUE_REGS
            || level() != Level::V4
            || !fits(c.k)
            || !fits(c.v)
        {
            return None;
        }
        // SAFETY: T and T::A are f32 (checked above), so Ctx<T, K> is Ctx<f32, K> and its
        // scale an f32.
        let c = unsafe { &*(c as *const Ctx<'_, T, K> as *const Ctx<'_, f32, K>) };
        Some(split(c, b, s))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (c, b, s);
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn split<K: Float>(c: &Ctx<'_, f32, K>, b: usize, s: usize) -> Vec<f32> {
    let (d, t, rep) = (c.d, c.t, c.rep);
    let groups = b * (c.h / rep);
    // chunks per kv head: at least four tasks per thread, chunks of MIN_CHUNK keys or more
    let per = (4 * crate::par::threads()).div_ceil(groups).max(1);
    let chunk = t.div_ceil(per).max(MIN_CHUNK);
    let chunks = t.div_ceil(chunk);
    let rows = rep * s;
    // per task and query row: m, l, then d value sums
    let stride = d + 2;
    let mut part = vec![0f32; groups * chunks * rows * stride];
    let pptr = crate::team::SyncPtr::new(&mut part);
    crate::par::for_each(groups * chunks, |task| {
        let (g, ci) = (task / chunks, task % chunks);
        // SAFETY: task's rows of `part` belong to this task only.
        let out = unsafe { pptr.slice(task * rows * stride, rows * stride) };
        let keys = ci * chunk..((ci + 1) * chunk).min(t);
        // SAFETY: AVX-512 is present and the rows lie inside k and v (attention_split).
        unsafe { chunk_task(c, g, s, keys, out) };
    });
    let mut out = crate::storage::alloc_out::<f32>(b * c.h * s * d);
    let kvh = c.h / rep;
    for g in 0..groups {
        let (bi, kh) = (g / kvh, g % kvh);
        for r in 0..rows {
            let (hi, i) = (kh * rep + r / s, r % s);
            let o = &mut out[((bi * c.h + hi) * s + i) * d..][..d];
            let at = |ci: usize| &part[((g * chunks + ci) * rows + r) * stride..][..stride];
            combine((0..chunks).map(at), o);
        }
    }
    out
}

/// `o` from the chunks' (m, l, value sums): NaN where a maximum is NaN or +∞ or every score is
/// −∞ (as the composed softmax gives).
#[cfg(target_arch = "x86_64")]
fn combine<'a>(parts: impl Iterator<Item = &'a [f32]> + Clone, o: &mut [f32]) {
    let mut big = f32::NEG_INFINITY;
    for p in parts.clone() {
        if p[0].is_nan() {
            big = f32::NAN;
            break;
        }
        big = big.max(p[0]);
    }
    if !big.is_finite() {
        o.fill(f32::NAN);
        return;
    }
    o.fill(0.0);
    let mut l = 0.0;
    for p in parts {
        if p[0] == f32::NEG_INFINITY {
            continue;
        }
        let w = (p[0] - big).exp();
        l += p[1] * w;
        for (o, &x) in o.iter_mut().zip(&p[2..]) {
            *o += x * w;
        }
    }
    let inv = 1.0 / l;
    for o in o.iter_mut() {
        *o *= inv;
    }
}

/// Every query row of kv head group `g` (batch g / kv heads, kv head g % kv heads) over the
/// keys `keys`: (m, l, value sums) per row into `out`, the rows in blocks that read each key and
/// value row once ([`block_scores`], [`sums`]).
///
/// # Safety
/// AVX-512F is present; the keys and values of the group lie inside k and v; q's rows are
/// unit-stride with d values, d a multiple of 16 up to 16·[`VALUE_REGS`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
unsafe fn chunk_task<K: Float>(
    c: &Ctx<'_, f32, K>,
    g: usize,
    s: usize,
    keys: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let (d, rep) = (c.d, c.rep);
    let kvh = c.h / rep;
    let (bi, kh) = (g / kvh, g % kvh);
    let (k0, ks) = (at(c.k.1, bi, kh, 0), c.k.1.strides[2]);
    let (v0, vs) = (at(c.v.1, bi, kh, 0), c.v.1.strides[2]);
    let n = keys.len();
    let rows = rep * s;
    // rows per block: their value sums (rows × d / 16 registers) held in at most 24 registers
    let per = (24 / (d / 16)).clamp(1, 4);
    let mut p = vec![0f32; per * n];
    let mut r0 = 0;
    while r0 < rows {
        let nr = per.min(rows - r0);
        // each row's query, visible keys in this chunk (from keys.start), and output
        let mut q = [std::ptr::null::<f32>(); 4];
        let mut seen = [0usize; 4];
        for r in 0..nr {
            let (hi, i) = (kh * rep + (r0 + r) / s, (r0 + r) % s);
            q[r] = c.q.0.as_ptr().add(at(c.q.1, bi, hi, i));
            let visible = if c.causal {
                (i + c.offset + 1).min(c.t)
            } else {
                c.t
            };
            seen[r] = keys.end.min(visible).saturating_sub(keys.start);
        }
        let most = seen[..nr].iter().copied().max().unwrap_or(0);
        let kp = c.k.0.as_ptr().add(k0 + keys.start * ks);
        macro_rules! scores {
            ($($r:literal),*) => {
                match nr {
                    $($r => block_scores::<K, $r>(d, &q, kp, ks, most, c.scale, &mut p, n),)*
                    _ => unreachable!(),
                }
            };
        }
        scores!(1, 2, 3, 4);
        for r in 0..nr {
            let (hi, i) = (kh * rep + (r0 + r) / s, (r0 + r) % s);
            let o = &mut out[(r0 + r) * (d + 2)..][..d + 2];
            let p = &mut p[r * n..][..most];
            let seen = seen[r];
            if let Some((mv, ml)) = c.mask {
                let m0 = at(ml, bi, hi, i);
                for (j, pj) in (keys.start..).zip(p[..seen].iter_mut()) {
                    *pj += mv[m0 + j * ml.strides[3]];
                }
            }
            let m = super::reduce::max_acc::<f32>(&p[..seen]);
            o[0] = m;
            // a row with nothing to add (no visible key, or a max of ±∞ / NaN that the combine
            // step turns into −∞'s nothing or a NaN row) adds zero weights
            if m.is_finite() {
                o[1] = super::softmax::exp_sum_in_place::<f32, plumb_core::math::Fused>(
                    &mut p[..seen],
                    m,
                );
            } else {
                p[..seen].fill(0.0);
            }
            p[seen..].fill(0.0);
        }
        let vp = c.v.0.as_ptr().add(v0 + keys.start * vs);
        let ob = out.as_mut_ptr().add(r0 * (d + 2) + 2);
        // the rows (1 to 4) and the registers per value row (d / 16: 1 to 8) as constants
        macro_rules! values {
            ($($r:literal),*) => {
                match nr {
                    $($r => values!(@regs $r; 1, 2, 3, 4, 5, 6, 7, 8),)*
                    _ => unreachable!(),
                }
            };
            (@regs $r:literal; $($nv:literal),*) => {
                match d / 16 {
                    $($nv => sums::<K, $r, $nv>(&p, n, vp, vs, most, ob, d + 2),)*
                    _ => unreachable!(),
                }
            };
        }
        values!(1, 2, 3, 4);
        r0 += nr;
    }
}

/// `p[r·n + j] = scale · q_r·k_j` for R query rows and the first `count` keys at `k` (rows `ks`
/// elements apart): each key row loaded (and widened) once for the R rows, two accumulators of
/// 16 lanes per row, summed as a tree.
///
/// # Safety
/// As [`chunk_task`]; `q` holds R row pointers of d values; `p` R·n values, n ≥ `count`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_scores<K: 'static, const R: usize>(
    d: usize,
    q: &[*const f32; 4],
    k: *const K,
    ks: usize,
    count: usize,
    scale: f32,
    p: &mut [f32],
    n: usize,
) {
    use std::arch::x86_64::*;
    for j in 0..count {
        let kr = k.add(j * ks);
        let mut a = [[_mm512_setzero_ps(); 2]; R];
        let mut x = 0;
        while x + 32 <= d {
            let (k0, k1) = (load16!(K, kr.add(x)), load16!(K, kr.add(x + 16)));
            for (r, a) in a.iter_mut().enumerate() {
                a[0] = _mm512_fmadd_ps(_mm512_loadu_ps(q[r].add(x)), k0, a[0]);
                a[1] = _mm512_fmadd_ps(_mm512_loadu_ps(q[r].add(x + 16)), k1, a[1]);
            }
            x += 32;
        }
        if x < d {
            let k0 = load16!(K, kr.add(x));
            for (r, a) in a.iter_mut().enumerate() {
                a[0] = _mm512_fmadd_ps(_mm512_loadu_ps(q[r].add(x)), k0, a[0]);
            }
        }
        for (r, a) in a.iter().enumerate() {
            p[r * n + j] = _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1])) * scale;
        }
    }
}

/// For R rows: `o_r = Σ_{j < count} p[r·n + j]·v_j` over the value rows at `v` (`vs` elements
/// apart, d = 16·V values), row r's sums written at `o + r·os`; each value row loaded (and
/// widened) once for the R rows, whose R·V sums stay in registers.
///
/// # Safety
/// As [`chunk_task`]; `p` holds R·n weights; `o` addresses R rows of d values `os` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
unsafe fn sums<K: 'static, const R: usize, const V: usize>(
    p: &[f32],
    n: usize,
    v: *const K,
    vs: usize,
    count: usize,
    o: *mut f32,
    os: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for j in 0..count {
        let row = v.add(j * vs);
        let mut vr = [_mm512_setzero_ps(); V];
        for (x, vr) in vr.iter_mut().enumerate() {
            *vr = load16!(K, row.add(16 * x));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let w = _mm512_set1_ps(*p.get_unchecked(r * n + j));
            for (a, &x) in acc.iter_mut().zip(&vr) {
                *a = _mm512_fmadd_ps(w, x, *a);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (x, &a) in acc.iter().enumerate() {
            _mm512_storeu_ps(o.add(r * os + 16 * x), a);
        }
    }
}
