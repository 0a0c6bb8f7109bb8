//! `matmul_f16` / `matmul_bf16` for few rows of `a` (a linear layer at batch one), with AVX-512:
//! both operands are widened to f32 block by block as they are packed, multiplied with f32
//! accumulation, and rounded once into the output.
//!
//! The path for other products (`matmul.rs`) widens the whole of both operands first and runs
//! the gemm crate. Against a weight that means widening all of it on every call, which for a few
//! rows costs more than the product itself. Here, blocked as BLIS does:
//! - each task owns a block of the output (the grid of `matmul.rs`) and goes through it in panels
//!   of [`NC`] columns;
//! - for every chunk of [`KC`] rows of `b`, it widens the panel's part of them into strips of 64
//!   columns (32 KiB each, so a strip stays in L1 while the rows of `a` use it);
//! - for every block of [`MC`] rows of `a`, it widens those rows' chunk into a small buffer
//!   and multiplies it by each strip, 6 rows × 64 columns in 24 registers;
//! - while it computes, it asks for the next chunk's rows of `b` and the next block's rows of `a`
//!   a few cache lines per tile, so the widening finds them in L2;
//! - partial sums stay in an f32 scratch output between chunks; after the last chunk each row
//!   block gets the linear layer's bias, activation and residual where it has them
//!   ([`Epilogue`], for `matmul_bias`, `matmul_bias_act` and `matmul_bias_add`) and is rounded
//!   into the output: one rounding, where the composed ops rounded after each.
//!
//! The kernel takes any number of rows, but `matmul.rs` sends it at most 96: with hundreds of
//! rows it ran level with or behind the widened copies on the 2-core build machine, in a
//! temporary probe that was not kept (its figures are in BENCHMARKS.md, marked so). Its
//! measurement at 40 rows is `bench_ops linear`, alternating with `PLUMB_CPU_ROWS=0`
//! (BENCHMARKS.md). x86-64 with AVX-512 only.

use super::unary::RowMap;
use super::Float;

/// Columns of the output per panel: its chunk of b, widened, is [`KC`] × 512 f32 (256 KiB).
#[cfg(target_arch = "x86_64")]
const NC: usize = 512;

/// Rows of a per block: 96 × [`KC`] f32 (48 KiB) widened at a time.
#[cfg(target_arch = "x86_64")]
const MC: usize = 96;

/// How many rows ahead the widening loops ask for the row they will read.
#[cfg(target_arch = "x86_64")]
const AHEAD: usize = 8;

#[cfg(target_arch = "x86_64")]
use super::matmul_rows::{strip_masks, ROWS, STRIP};

/// Rows of b per chunk.
#[cfg(target_arch = "x86_64")]
const KC: usize = 128;

/// A float type this kernel widens from: 16 values at a time into an AVX-512 register.
pub trait Wide: Float<A = f32> {
    /// The 16 values at `p` (lanes outside `mask` are not read and come out 0) as f32.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL are present; the lanes of `mask` are readable at `p`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(
        p: *const Self,
        mask: std::arch::x86_64::__mmask16,
    ) -> std::arch::x86_64::__m512;
}

impl Wide for half::f16 {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load16(
        p: *const Self,
        mask: std::arch::x86_64::__mmask16,
    ) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p as *const i16))
    }
}

impl Wide for half::bf16 {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load16(
        p: *const Self,
        mask: std::arch::x86_64::__mmask16,
    ) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // bf16 is the upper half of an f32
        let w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p as *const i16));
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w))
    }
}

impl Wide for f32 {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load16(
        p: *const Self,
        mask: std::arch::x86_64::__mmask16,
    ) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_maskz_loadu_ps(mask, p)
    }
}

/// Operands of [`matmul_widen`]: element (i, j) of `a` (m × k) at `a[i·ars + j·acs]`, of `b`
/// (k × n) at `b[i·brs + j·bcs]`. Unit column strides read 16 values at a time; others one by
/// one.
#[derive(Clone, Copy)]
pub struct Strided<'a, T> {
    pub a: &'a [T],
    pub ars: usize,
    pub acs: usize,
    pub b: &'a [T],
    pub brs: usize,
    pub bcs: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

impl<T> Strided<'_, T> {
    /// Every element the strides address lies inside `a` and `b`.
    fn in_bounds(&self) -> bool {
        let last = |rows: usize, rs: usize, cols: usize, cs: usize| {
            (rows - 1)
                .checked_mul(rs)
                .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        };
        self.m > 0
            && self.k > 0
            && self.n > 0
            && last(self.m, self.ars, self.k, self.acs).is_some_and(|l| l < self.a.len())
            && last(self.k, self.brs, self.n, self.bcs).is_some_and(|l| l < self.b.len())
    }
}

/// Whether this kernel runs here: AVX-512 in this CPU (and the dispatch level).
pub fn applies() -> bool {
    cfg!(target_arch = "x86_64") && super::simd::level() == super::simd::Level::V4
}

/// What a linear layer does to its product before it is rounded, in f32: add `bias` (n values)
/// to every row, apply `act` to each row, add `res` (m × n values, row-major: the skip
/// connection), in that order.
#[derive(Clone, Copy)]
pub struct Epilogue<'a, T> {
    pub bias: Option<&'a [T]>,
    pub act: Option<RowMap<'a, f32>>,
    pub res: Option<&'a [T]>,
}

impl<T> Epilogue<'_, T> {
    /// The product alone.
    pub const NONE: Self = Epilogue {
        bias: None,
        act: None,
        res: None,
    };

    pub fn is_none(&self) -> bool {
        self.bias.is_none() && self.act.is_none() && self.res.is_none()
    }
}

/// c = a · b (then `epi`) as a contiguous m × n vector of `T`, accumulated in f32 and rounded
/// once; `None` where [`applies`] is false, a dim is 0, the operands do not hold what their
/// strides address, or the bias or residual is not of the output's width or size.
pub fn matmul_widen<T: Wide>(x: Strided<T>, epi: Epilogue<T>) -> Option<Vec<T>> {
    if !applies()
        || !x.in_bounds()
        || epi.bias.is_some_and(|b| b.len() != x.n)
        || epi.res.is_some_and(|r| r.len() != x.m * x.n)
    {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let len = x.m * x.n;
        // every element of both is written below before its length is set (the first chunk
        // stores every partial sum; the last rounds every one into `out`)
        let mut acc = crate::pool::take::<f32>(len).unwrap_or_else(|| Vec::with_capacity(len));
        let mut out = crate::pool::take::<T>(len).unwrap_or_else(|| Vec::with_capacity(len));
        let (accp, outp) = (
            crate::team::SyncPtr::spare(&mut acc),
            crate::team::SyncPtr::spare(&mut out),
        );
        let (rb, cb) = super::matmul::grid(x.m, x.n, crate::par::threads());
        let (rper, cper) = (
            x.m.div_ceil(rb).next_multiple_of(ROWS),
            x.n.div_ceil(cb).next_multiple_of(STRIP),
        );
        let (rb, cb) = (x.m.div_ceil(rper), x.n.div_ceil(cper));
        crate::par::for_each(rb * cb, |t| {
            let (r0, c0) = (t / cb * rper, t % cb * cper);
            let block = Area {
                r0,
                r1: (r0 + rper).min(x.m),
                c0,
                c1: (c0 + cper).min(x.n),
            };
            // SAFETY: AVX-512 (`applies`); the operands hold what they address (`in_bounds`);
            // this task's rows × columns of `acc` and `out` are written by it alone
            unsafe { area(x, epi, block, accp.ptr(), outp.ptr()) }
        });
        // SAFETY: the tasks wrote all m × n elements of both (see above) and have finished
        unsafe {
            acc.set_len(len);
            out.set_len(len);
        }
        crate::pool::give(<f32 as crate::storage::Elem>::wrap(acc));
        Some(out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Rows r0 .. r1 × columns c0 .. c1 of the output.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Area {
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
}

/// 64-byte aligned f32 storage for widened strips (the register block reads them aligned).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Line {
    _v: [f32; 16],
}

/// One task's block of the output: panels of [`NC`] columns, chunks of [`KC`] rows of b, blocks
/// of [`MC`] rows of a (see the module docs). `acc` holds the f32 partial sums, `out` the result.
///
/// # Safety
/// AVX-512 is present; `x` is in bounds; `acc` and `out` address m × n values of which this
/// area's are this call's alone.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn area<T: Wide>(x: Strided<T>, epi: Epilogue<T>, ar: Area, acc: *mut f32, out: *mut T) {
    let panel_strips = NC.min(ar.c1 - ar.c0).div_ceil(STRIP);
    // written by `widen_panel` / `widen_rows` before the tiles read them; never read as values
    // of these types
    let mut bp = Vec::<Line>::with_capacity(panel_strips * KC * STRIP / 16);
    let bp = bp.as_mut_ptr() as *mut f32;
    let mut ap = Vec::<f32>::with_capacity(MC.min(ar.r1 - ar.r0) * KC);
    let ap = ap.as_mut_ptr();
    // (first column of the panel, first row of b's chunk), in the order they are computed
    let chunks: Vec<(usize, usize)> = (ar.c0..ar.c1)
        .step_by(NC)
        .flat_map(|nc0| (0..x.k).step_by(KC).map(move |k0| (nc0, k0)))
        .collect();
    let blocks: Vec<usize> = (ar.r0..ar.r1).step_by(MC).collect();
    for (ci, &(nc0, k0)) in chunks.iter().enumerate() {
        let ncols = NC.min(ar.c1 - nc0);
        let strips = ncols.div_ceil(STRIP);
        let kc = KC.min(x.k - k0);
        let (first, last) = (k0 == 0, k0 + kc == x.k);
        widen_panel(x, k0, kc, nc0, ncols, bp);
        // the next chunk's rows of b come into L2 a few lines per tile while this one computes
        let next = chunks.get(ci + 1).copied();
        let mut b_next = next.map_or(Ahead::NONE, |(n0, k1)| {
            Ahead::rows(
                x.b,
                x.brs,
                x.bcs,
                k1,
                KC.min(x.k - k1),
                n0,
                NC.min(ar.c1 - n0),
            )
        });
        let tiles = blocks.len() * strips * MC.min(ar.r1 - ar.r0).div_ceil(ROWS);
        let b_quota = b_next.lines().div_ceil(tiles.max(1));
        for (bi, &m0) in blocks.iter().enumerate() {
            let mc = MC.min(ar.r1 - m0);
            widen_rows(x, m0, mc, k0, kc, ap);
            // and the next block's rows of a (the first block of the next chunk after the last)
            let a_next = match (blocks.get(bi + 1), next) {
                (Some(&m1), _) => Some((m1, k0)),
                (None, Some((_, k1))) => Some((ar.r0, k1)),
                (None, None) => None,
            };
            let mut a_next = a_next.map_or(Ahead::NONE, |(m1, k1)| {
                Ahead::rows(
                    x.a,
                    x.ars,
                    x.acs,
                    m1,
                    MC.min(ar.r1 - m1),
                    k1,
                    KC.min(x.k - k1),
                )
            });
            let a_quota = a_next.lines().div_ceil(strips * mc.div_ceil(ROWS));
            for s in 0..strips {
                let c0 = nc0 + s * STRIP;
                let masks = strip_masks(ncols - s * STRIP);
                for g in (0..mc).step_by(ROWS) {
                    // the tile after this one: the next rows of the strip, else the next strip's
                    // first rows (its sums are read back unless this is the first chunk)
                    let (gn, cn) = if g + ROWS < mc {
                        (g + ROWS, c0)
                    } else {
                        (0, c0 + STRIP)
                    };
                    let t = Tile {
                        a: ap.add(g * KC),
                        b: bp.add(s * KC * STRIP),
                        kc,
                        c: acc.add((m0 + g) * x.n + c0),
                        ldc: x.n,
                        masks,
                        first,
                        next: if first || cn >= nc0 + ncols {
                            std::ptr::null()
                        } else {
                            acc.add((m0 + gn) * x.n + cn)
                        },
                    };
                    match ROWS.min(mc - g) {
                        6 => tile::<6>(t),
                        5 => tile::<5>(t),
                        4 => tile::<4>(t),
                        3 => tile::<3>(t),
                        2 => tile::<2>(t),
                        _ => tile::<1>(t),
                    }
                    a_next.issue(a_quota);
                    b_next.issue(b_quota);
                }
            }
            if last {
                for r in m0..m0 + mc {
                    let at = r * x.n + nc0;
                    let row = std::slice::from_raw_parts_mut(acc.add(at), ncols);
                    if !epi.is_none() {
                        finish(row, epi, at, nc0);
                    }
                    let dst = std::slice::from_raw_parts_mut(out.add(at), ncols);
                    for (d, &v) in dst.iter_mut().zip(&*row) {
                        *d = T::from_acc(v);
                    }
                }
            }
        }
    }
}

/// `epi` on the f32 sums of one row of a panel: the output's elements `at ..`, its columns
/// `c0 ..`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn finish<T: Wide>(row: &mut [f32], epi: Epilogue<T>, at: usize, c0: usize) {
    if let Some(bias) = epi.bias {
        for (v, b) in row.iter_mut().zip(&bias[c0..]) {
            *v += b.to_acc();
        }
    }
    if let Some(act) = epi.act {
        act(row);
    }
    if let Some(res) = epi.res {
        for (v, r) in row.iter_mut().zip(&res[at..]) {
            *v += r.to_acc();
        }
    }
}

/// Cache lines to bring into L2 a few at a time: `rows` rows of `bytes` each, `stride` bytes
/// apart, from `at` (nothing where the rows are not contiguous).
#[cfg(target_arch = "x86_64")]
struct Ahead {
    at: *const u8,
    stride: usize,
    rows: usize,
    per_row: usize,
    done: usize,
}

#[cfg(target_arch = "x86_64")]
impl Ahead {
    const NONE: Ahead = Ahead {
        at: std::ptr::null(),
        stride: 0,
        rows: 0,
        per_row: 1,
        done: 0,
    };

    /// Rows r0 .. r0 + rows, columns c0 .. c0 + cols of a matrix in `data` (row stride `rs`,
    /// column stride `cs`: only 1 is fetched).
    ///
    /// # Safety
    /// The rows and columns lie inside `data`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows<T>(
        data: &[T],
        rs: usize,
        cs: usize,
        r0: usize,
        rows: usize,
        c0: usize,
        cols: usize,
    ) -> Ahead {
        if cs != 1 {
            return Ahead::NONE;
        }
        let size = std::mem::size_of::<T>();
        Ahead {
            at: data.as_ptr().add(r0 * rs + c0) as *const u8,
            stride: rs * size,
            rows,
            per_row: (cols * size).div_ceil(64),
            done: 0,
        }
    }

    fn lines(&self) -> usize {
        self.rows * self.per_row
    }

    /// Ask for the next `n` lines.
    #[inline(always)]
    fn issue(&mut self, n: usize) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let end = (self.done + n).min(self.lines());
        while self.done < end {
            let (r, l) = (self.done / self.per_row, self.done % self.per_row);
            let p = self.at.wrapping_add(r * self.stride + 64 * l) as *const i8;
            // SAFETY: a prefetch is a hint; it never faults, whatever the address
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p) };
            self.done += 1;
        }
    }
}

/// Rows k0 .. k0 + kc of b's columns c0 .. c0 + cols, widened into strips of [`STRIP`] columns
/// (kc rows each, [`KC`] rows apart) at `dst`, columns past `cols` zero. Row by row, asking for
/// the row [`AHEAD`] rows on: each row's part lies on its own pages, where the hardware's
/// prefetcher does not look.
///
/// # Safety
/// As [`area`]; `dst` holds the strips, 64-byte aligned.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn widen_panel<T: Wide>(
    x: Strided<T>,
    k0: usize,
    kc: usize,
    c0: usize,
    cols: usize,
    dst: *mut f32,
) {
    use std::arch::x86_64::*;
    let strips = cols.div_ceil(STRIP);
    let bytes = cols * std::mem::size_of::<T>();
    for kk in 0..kc {
        let src = x.b.as_ptr().add((k0 + kk) * x.brs + c0 * x.bcs);
        if x.bcs == 1 && kk + AHEAD < kc {
            let ahead = src.add(AHEAD * x.brs) as *const i8;
            for off in (0..bytes).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.add(off));
            }
        }
        for s in 0..strips {
            let row = dst.add((s * KC + kk) * STRIP);
            let left = cols - s * STRIP;
            let src = src.add(s * STRIP * x.bcs);
            if x.bcs == 1 {
                for (v, &m) in strip_masks(left).iter().enumerate() {
                    _mm512_store_ps(row.add(16 * v), T::load16(src.add(16 * v), m));
                }
            } else {
                for j in 0..STRIP {
                    *row.add(j) = if j < left {
                        (*src.add(j * x.bcs)).to_acc()
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// Rows m0 .. m0 + mc of a's columns k0 .. k0 + kc, widened into rows of [`KC`] f32 at `dst`.
///
/// # Safety
/// As [`area`]; `dst` holds mc × [`KC`] f32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn widen_rows<T: Wide>(
    x: Strided<T>,
    m0: usize,
    mc: usize,
    k0: usize,
    kc: usize,
    dst: *mut f32,
) {
    use std::arch::x86_64::*;
    let bytes = kc * std::mem::size_of::<T>();
    for r in 0..mc {
        let src = x.a.as_ptr().add((m0 + r) * x.ars + k0 * x.acs);
        let row = dst.add(r * KC);
        if x.acs == 1 && r + AHEAD < mc {
            let ahead = src.add(AHEAD * x.ars) as *const i8;
            for off in (0..bytes).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.add(off));
            }
        }
        if x.acs == 1 {
            for j in (0..kc).step_by(16) {
                let m = ((1u32 << (kc - j).min(16)) - 1) as u16;
                _mm512_mask_storeu_ps(row.add(j), m, T::load16(src.add(j), m));
            }
        } else {
            for j in 0..kc {
                *row.add(j) = (*src.add(j * x.acs)).to_acc();
            }
        }
    }
}

/// One register tile: R rows of widened a (rows [`KC`] apart) × a widened strip of b (rows
/// [`STRIP`] apart), kc steps, into R × 64 values of c (row stride `ldc`, the columns of
/// `masks`).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    a: *const f32,
    b: *const f32,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    masks: [std::arch::x86_64::__mmask16; 4],
    /// start from zero (else add to what c holds)
    first: bool,
    /// the next tile's sums in c, asked for a line per step (null: none to ask for)
    next: *const f32,
}

/// c (+)= a · b for one [`Tile`]: 4 × R sums in registers, one broadcast of a per row and four
/// aligned loads of b per step. The strides are constants, so every address is a fixed offset
/// from two pointers.
///
/// # Safety
/// AVX-512 is present; `a` holds R rows of kc (rows [`KC`] apart), `b` kc rows of [`STRIP`]
/// (64-byte aligned), `c` R rows of the masked columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn tile<const R: usize>(t: Tile) {
    use std::arch::x86_64::*;
    let m = t.masks;
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    if !t.first {
        for (r, acc) in acc.iter_mut().enumerate() {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_maskz_loadu_ps(m[v], t.c.add(r * t.ldc + 16 * v));
            }
        }
    }
    let (mut a, mut b) = (t.a, t.b);
    for kk in 0..t.kc {
        if !t.next.is_null() && kk < 4 * ROWS {
            let line = t.next.wrapping_add(kk / 4 * t.ldc + kk % 4 * 16) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(line);
        }
        let bv = [0, 1, 2, 3].map(|v| _mm512_load_ps(b.add(16 * v)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*a.add(r * KC));
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm512_fmadd_ps(x, bv, *acc);
            }
        }
        a = a.add(1);
        b = b.add(STRIP);
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, &acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(t.c.add(r * t.ldc + 16 * v), m[v], acc);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use half::{bf16, f16};

    /// c = a · b against an f64 product of the same (rounded) inputs, for every shape of
    /// `cases`: `t` (transposed) reads a by columns and b by columns (strides other than 1).
    fn check<T: Wide>(name: &str, from: fn(f32) -> T, tol: f64) {
        if !applies() {
            eprintln!(
                "skipped: matmul_widen needs AVX-512, which this CPU or PLUMB_CPU_SIMD lacks"
            );
            return;
        }
        let val = |i: usize, s: usize| ((i * s) % 1001) as f32 / 1001.0 - 0.5;
        // row tails (1 to 6 rows per tile), column tails, several chunks of k (KC = 128),
        // several panels of columns (NC = 512), more rows than a block (MC = 96)
        for (m, k, n) in [
            (1, 1, 1),
            (5, 7, 130),
            (40, 384, 200),
            (13, 129, 600),
            (100, 257, 70),
        ] {
            for t in [false, true] {
                let a: Vec<T> = (0..m * k).map(|i| from(val(i, 7919))).collect();
                let b: Vec<T> = (0..k * n).map(|i| from(val(i, 104729))).collect();
                // a stored [k, m] and b stored [n, k] when transposed
                let (ars, acs, brs, bcs) = if t { (1, m, 1, k) } else { (k, 1, n, 1) };
                let x = Strided {
                    a: &a,
                    ars,
                    acs,
                    b: &b,
                    brs,
                    bcs,
                    m,
                    k,
                    n,
                };
                let c = matmul_widen(x, Epilogue::NONE).expect("applies");
                assert_eq!(c.len(), m * n);
                for (idx, &got) in c.iter().enumerate() {
                    let (i, j) = (idx / n, idx % n);
                    let want: f64 = (0..k)
                        .map(|p| {
                            let av = a[i * ars + p * acs].to_acc() as f64;
                            av * b[p * brs + j * bcs].to_acc() as f64
                        })
                        .sum();
                    let got = got.to_acc() as f64;
                    assert!(
                        (got - want).abs() <= tol * (1.0 + want.abs()),
                        "{name} {m}x{k}x{n} transposed {t}: c[{i},{j}] = {got}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn f16_matches_the_f64_product() {
        check::<f16>("f16", f16::from_f32, 2e-3);
    }

    #[test]
    fn bf16_matches_the_f64_product() {
        check::<bf16>("bf16", bf16::from_f32, 1e-2);
    }

    #[test]
    fn f32_matches_the_f64_product() {
        check::<f32>("f32", |v| v, 1e-5);
    }

    /// The bias, the activation and the residual go onto the f32 sums in that order, with
    /// several panels of columns and chunks of k; a bias or residual of the wrong size is
    /// declined.
    #[test]
    fn applies_the_epilogue_before_rounding() {
        if !applies() {
            eprintln!(
                "skipped: matmul_widen needs AVX-512, which this CPU or PLUMB_CPU_SIMD lacks"
            );
            return;
        }
        let (m, k, n) = (7, 300, 600);
        let val = |i: usize, s: usize| ((i * s) % 1001) as f32 / 1001.0 - 0.5;
        let h = |v: f32| f16::from_f32(v);
        let a: Vec<f16> = (0..m * k).map(|i| h(val(i, 7919))).collect();
        let b: Vec<f16> = (0..k * n).map(|i| h(val(i, 104729))).collect();
        let bias: Vec<f16> = (0..n).map(|i| h(val(i, 31))).collect();
        let res: Vec<f16> = (0..m * n).map(|i| h(val(i, 57))).collect();
        // a step no linear layer uses, so the order of the three shows: max(v, 0.1) · 3
        let act = |row: &mut [f32]| row.iter_mut().for_each(|v| *v = v.max(0.1) * 3.0);
        let x = Strided {
            a: &a,
            ars: k,
            acs: 1,
            b: &b,
            brs: n,
            bcs: 1,
            m,
            k,
            n,
        };
        let epi = Epilogue {
            bias: Some(&bias[..]),
            act: Some(&act),
            res: Some(&res[..]),
        };
        let c = matmul_widen(x, epi).expect("applies");
        for (idx, &got) in c.iter().enumerate() {
            let (i, j) = (idx / n, idx % n);
            let dot: f64 = (0..k)
                .map(|p| a[i * k + p].to_f64() * b[p * n + j].to_f64())
                .sum();
            let want = (dot + bias[j].to_f64()).max(0.1) * 3.0 + res[idx].to_f64();
            assert!(
                (got.to_f64() - want).abs() <= 2e-3 * (1.0 + want.abs()),
                "c[{i},{j}] = {got}, want {want}"
            );
        }
        let short = Epilogue {
            bias: Some(&bias[1..]),
            ..Epilogue::NONE
        };
        assert!(matmul_widen(x, short).is_none(), "bias of n − 1 values");
        let short = Epilogue {
            res: Some(&res[1..]),
            ..Epilogue::NONE
        };
        assert!(
            matmul_widen(x, short).is_none(),
            "residual of m·n − 1 values"
        );
    }

    #[test]
    fn declines_operands_shorter_than_their_strides() {
        let v = vec![f16::ZERO; 6];
        let x = Strided {
            a: &v,
            ars: 3,
            acs: 1,
            b: &v,
            brs: 2,
            bcs: 1,
            m: 2,
            k: 3,
            n: 2,
        };
        if !applies() {
            assert!(
                matmul_widen(x, Epilogue::NONE).is_none(),
                "declines everything where it does not apply"
            );
            eprintln!(
                "skipped: matmul_widen needs AVX-512, which this CPU or PLUMB_CPU_SIMD lacks"
            );
            return;
        }
        assert!(matmul_widen(x, Epilogue::NONE).is_some());
        assert!(
            matmul_widen(Strided { m: 3, ..x }, Epilogue::NONE).is_none(),
            "a too short"
        );
        assert!(
            matmul_widen(Strided { n: 3, ..x }, Epilogue::NONE).is_none(),
            "b too short"
        );
        assert!(
            matmul_widen(Strided { k: 0, ..x }, Epilogue::NONE).is_none(),
            "empty"
        );
    }
}
