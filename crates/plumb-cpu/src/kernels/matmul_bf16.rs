//! bf16 matmul with the AVX512-BF16 dot-product instruction (`vdpbf16ps`: 16 f32 lanes, each
//! adding a·b over a pair of bf16 values), selected at run time ([`selected`]). The caller
//! widens to f32 and uses the f32 gemm where this kernel does not run.
//!
//! Layout: k is taken in pairs. A pair of bf16 values is one u32, so a row-major `a` with even k
//! is read in place as rows of pairs; other layouts are packed into such rows. `b` is packed per
//! panel of [`NR`] columns as `[pair][column]` u32s (one zmm = 16 columns × 2 k values), from a
//! row-major `b` by interleaving two rows, or from a transposed one (a linear layer's weight) by
//! copying each column's pairs. The microkernel keeps a tile of up to [`MR`] × [`NR`] f32
//! accumulators in registers over the whole depth; the bias, activation and residual of a linear
//! layer are applied to the tile in f32 before it is rounded once into the output.

use super::matmul::{batch_offset, broadcast_batch, uniform_rows, Dims};
use super::matmul_widen::{Epilogue, Wide};
use crate::par;
use half::bf16;
use plumb_core::{DType, Result, View};

/// Rows of a tile.
pub const MR: usize = 6;
/// Columns of a tile (and of a packed panel of `b`).
pub const NR: usize = 64;
/// Row tiles per parallel task.
const TILES_PER_TASK: usize = 8;

/// Whether bf16 products go through this kernel: `PLUMB_CPU_BF16_DOT=1` / `=0` says so;
/// otherwise where the CPU has AVX512-BF16 and `vdpbf16ps` was measured at least as fast per flop
/// as the f32 FMA ([`issue_rate::bf16_dot_pays`]). It was not on the Intel VM of BENCHMARKS.md
/// (about a quarter of the FMA's rate, so widening to f32 was faster); on AMD Zen 4 it issues at
/// the FMA's rate with twice its flops. Decided once per process (every bf16 product asks).
///
/// [`issue_rate::bf16_dot_pays`]: super::issue_rate::bf16_dot_pays
pub fn selected() -> bool {
    static SELECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SELECTED.get_or_init(|| match std::env::var("PLUMB_CPU_BF16_DOT").as_deref() {
        Ok("1") => available(),
        Ok("0") => false,
        _ => available() && super::issue_rate::bf16_dot_pays(),
    })
}

/// Whether this CPU has what the kernel needs (AVX-512 at the dispatch level, AVX512-BF16).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::simd::level() == super::simd::Level::V4
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `a · b` (then `epi`) for bf16 operands through `vdpbf16ps`, rounded once into `T`; `None`
/// where the operands are not bf16, the depth is 0 (the caller's path writes the empty sums), the
/// CPU lacks the instructions (see [`available`]; the choice of [`selected`] is the caller's),
/// or the bias or residual is not of the output's size.
/// `packed`: `b`'s panels, where `b` is a whole weight packed at load ([`PackedBf16`]; its
/// values are then not read from `b`).
pub fn matmul<T: Wide>(
    a: &View,
    b: &View,
    d: Dims,
    epi: Epilogue<T>,
    packed: Option<&PackedBf16>,
) -> Result<Option<Vec<T>>> {
    if a.dtype != DType::BF16
        || b.dtype != DType::BF16
        || d.k == 0
        || !available()
        || epi.bias.is_some_and(|v| v.len() != d.n)
        || epi.res.is_some_and(|v| v.len() != d.batch * d.m * d.n)
        || packed.is_some_and(|p| (p.k, p.n) != (d.k, d.n))
    {
        return Ok(None);
    }
    #[cfg(target_arch = "x86_64")]
    {
        x86::matmul(a, b, d, epi, packed).map(Some)
    }
    #[cfg(not(target_arch = "x86_64"))]
    Ok(None)
}

/// A bf16 weight [k, n] packed once (at load) in the panels [`matmul`] reads: no per-call
/// packing, and products of any number of rows, one included, go to the kernel.
#[derive(Debug)]
pub struct PackedBf16 {
    data: Vec<i32>,
    k: usize,
    n: usize,
}

packed_dims!(PackedBf16);

impl PackedBf16 {
    /// Pack a row-major [k, n] matrix; `None` where `b` is shorter than that or empty.
    pub fn pack(b: &[bf16], k: usize, n: usize) -> Option<PackedBf16> {
        if k == 0 || n == 0 || b.len() < k * n {
            return None;
        }
        let data = pack_b(
            Strided {
                data: b,
                rs: n,
                cs: 1,
            },
            k,
            n,
        );
        Some(PackedBf16 { data, k, n })
    }
    /// The row-major [k, n] values.
    pub fn unpack(&self) -> Vec<bf16> {
        let (k, n) = (self.k, self.n);
        let kp = k.div_ceil(2);
        let mut out = vec![bf16::ZERO; k * n];
        for (panel, src) in self.data.chunks(kp * NR).enumerate() {
            let j0 = panel * NR;
            let cols = NR.min(n - j0);
            for (p, row) in src.chunks_exact(NR).enumerate() {
                for (jj, &v) in row[..cols].iter().enumerate() {
                    let v = v as u32;
                    out[2 * p * n + j0 + jj] = bf16::from_bits(v as u16);
                    if 2 * p + 1 < k {
                        out[(2 * p + 1) * n + j0 + jj] = bf16::from_bits((v >> 16) as u16);
                    }
                }
            }
        }
        out
    }
}

/// One bf16 pair (`lo` at the lower k index) as the 32 bits `vdpbf16ps` reads (held as i32:
/// packed buffers come from the CPU backend's buffer pool, which holds element types).
#[inline(always)]
fn pair(lo: bf16, hi: bf16) -> i32 {
    (lo.to_bits() as u32 | ((hi.to_bits() as u32) << 16)) as i32
}

/// Element (i, j) of a strided matrix at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [bf16],
    rs: usize,
    cs: usize,
}

impl Strided<'_> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> bf16 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// `a`'s rows as u32 pairs: in place for a row-major `a` with even k (row stride k/2),
/// packed otherwise (the last pair of an odd k with a zero).
enum Rows<'a> {
    InPlace(&'a [bf16]),
    Packed(Vec<i32>),
}

impl Rows<'_> {
    fn ptr(&self) -> *const u32 {
        match self {
            Rows::InPlace(s) => s.as_ptr() as *const u32,
            Rows::Packed(v) => v.as_ptr() as *const u32,
        }
    }
}

fn rows_of(a: Strided, m: usize, k: usize) -> Rows {
    if a.cs == 1 && a.rs == k && k.is_multiple_of(2) {
        return Rows::InPlace(&a.data[..m * k]);
    }
    let kp = k.div_ceil(2);
    let mut out = crate::storage::alloc_overwrite::<i32>(m * kp);
    par::chunks_mut(&mut out, kp, |i, row| {
        for (p, o) in row.iter_mut().enumerate() {
            let hi = if 2 * p + 1 < k {
                a.at(i, 2 * p + 1)
            } else {
                bf16::ZERO
            };
            *o = pair(a.at(i, 2 * p), hi);
        }
    });
    Rows::Packed(out)
}

/// `b` (k × n) as panels of `[pair][NR columns]`, zero past k and n.
fn pack_b(b: Strided, k: usize, n: usize) -> Vec<i32> {
    let kp = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let mut out = crate::storage::alloc_overwrite::<i32>(panels * kp * NR);
    par::chunks_mut(&mut out, kp * NR, |panel, dst| {
        let j0 = panel * NR;
        let cols = NR.min(n - j0);
        if b.rs == 1 && b.cs >= k && k.is_multiple_of(2) {
            // a transposed weight: each column's pairs are adjacent u32s
            for jj in 0..cols {
                let col = &b.data[(j0 + jj) * b.cs..(j0 + jj) * b.cs + k];
                for (p, two) in col.chunks_exact(2).enumerate() {
                    dst[p * NR + jj] = pair(two[0], two[1]);
                }
            }
        } else if b.cs == 1 {
            // row-major: interleave rows 2p and 2p + 1
            interleave_rows(dst, b, k, j0, cols);
        } else {
            for (p, d) in dst.chunks_exact_mut(NR).enumerate() {
                for (jj, o) in d.iter_mut().enumerate().take(cols) {
                    let hi = if 2 * p + 1 < k {
                        b.at(2 * p + 1, j0 + jj)
                    } else {
                        bf16::ZERO
                    };
                    *o = pair(b.at(2 * p, j0 + jj), hi);
                }
            }
        }
        for d in dst.chunks_exact_mut(NR) {
            d[cols..].fill(0);
        }
    });
    out
}

#[inline(always)]
fn interleave_rows_body(dst: &mut [i32], b: Strided, k: usize, j0: usize, cols: usize) {
    for (p, d) in dst.chunks_exact_mut(NR).enumerate() {
        let lo = &b.data[2 * p * b.rs + j0..][..cols];
        if 2 * p + 1 < k {
            let hi = &b.data[(2 * p + 1) * b.rs + j0..][..cols];
            for ((o, &l), &h) in d.iter_mut().zip(lo).zip(hi) {
                *o = pair(l, h);
            }
        } else {
            for (o, &l) in d.iter_mut().zip(lo) {
                *o = pair(l, bf16::ZERO);
            }
        }
    }
}

multiversion!(
    /// One panel of a row-major `b` (columns j0..j0 + cols) as `[pair][NR]`, compiled for the
    /// CPU's SIMD level.
    fn interleave_rows[](dst: &mut [i32], b: Strided, k: usize, j0: usize, cols: usize) = interleave_rows_body[]
);

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn add_widened_body<T: Wide>(row: &mut [f32], x: &[T]) {
    for (v, x) in row.iter_mut().zip(x) {
        *v += x.to_acc();
    }
}

multiversion!(
    /// `row[c] += x[c]` widened to f32 (a tile row's bias or residual), compiled for the CPU's
    /// SIMD level: the task closure around it is not.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn add_widened[T: Wide](row: &mut [f32], x: &[T]) = add_widened_body[T]
);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        add_widened, broadcast_batch, pack_b, rows_of, uniform_rows, Dims, Epilogue, PackedBf16,
        Rows, Strided, Wide, MR, NR, TILES_PER_TASK,
    };
    use crate::par;
    use crate::storage::{raw_slice, Elem};
    use half::bf16;
    use plumb_core::{Result, View};

    fn strided<'a>(data: &'a [bf16], v: &View, bi: usize) -> Strided<'a> {
        let r = v.layout.rank();
        Strided {
            data: &data[super::batch_offset(v.layout, bi)..],
            rs: v.layout.strides[r - 2],
            cs: v.layout.strides[r - 1],
        }
    }

    pub fn matmul<T: Wide>(
        a: &View,
        b: &View,
        d: Dims,
        epi: Epilogue<T>,
        packed: Option<&PackedBf16>,
    ) -> Result<Vec<T>> {
        let (k, n) = (d.k, d.n);
        let da = raw_slice::<bf16>("matmul", a)?;
        // one weight for every batch of rows evenly spaced in `a`: one matrix of batch · m rows
        // (the output and the residual are laid out the same either way)
        let b_shared = broadcast_batch(b.layout);
        let fold = (d.batch > 1 && b_shared)
            .then(|| uniform_rows(a.layout))
            .flatten();
        let (batches, m) = match fold {
            Some(_) => (1, d.batch * d.m),
            None => (d.batch, d.m),
        };
        let a_at = |bi: usize| match fold {
            Some(rs) => Strided {
                rs: rs as usize,
                ..strided(da, a, 0)
            },
            None => strided(da, a, bi),
        };
        // a packed weight's values are its panels (reading `b` would unpack a row-major copy)
        let db = match packed {
            Some(_) => &[],
            None => raw_slice::<bf16>("matmul", b)?,
        };
        let len = batches * m * n;
        let mut out = crate::storage::alloc_overwrite::<T>(len);
        if len == 0 {
            return Ok(out);
        }
        let kp = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let row_tiles = m.div_ceil(MR);
        let tasks_per_panel = row_tiles.div_ceil(TILES_PER_TASK);
        // a weight broadcast over the batch is packed once
        let mut packed_b = None;
        for bi in 0..batches {
            if packed.is_none() && (packed_b.is_none() || !b_shared) {
                packed_b = Some(pack_b(strided(db, b, bi), k, n));
            }
            let pb = match packed {
                Some(p) => &p.data[..],
                None => packed_b.as_deref().unwrap_or_default(),
            };
            let rows = rows_of(a_at(bi), m, k);
            let ars = if matches!(rows, Rows::InPlace(_)) {
                k / 2
            } else {
                kp
            };
            // the address of a's pairs, shared by the tasks, which only read through it
            let ap = rows.ptr() as usize;
            let ob = &mut out[bi * m * n..(bi + 1) * m * n];
            let optr = crate::team::SyncPtr::new(ob);
            par::for_each(panels * tasks_per_panel, |task| {
                let (panel, chunk) = (task / tasks_per_panel, task % tasks_per_panel);
                let j0 = panel * NR;
                let cols = NR.min(n - j0);
                let bp = &pb[panel * kp * NR..(panel + 1) * kp * NR];
                let mut tile = [0f32; MR * NR];
                // the bias starts every row's sums (zero past the panel's columns)
                let mut init = [0f32; NR];
                if let Some(bias) = epi.bias {
                    add_widened(&mut init[..cols], &bias[j0..j0 + cols]);
                }
                let first = chunk * TILES_PER_TASK;
                for t in first..(first + TILES_PER_TASK).min(row_tiles) {
                    let i0 = t * MR;
                    let rows = MR.min(m - i0);
                    // SAFETY: the CPU has AVX-512F and AVX512-BF16 (`available`); rows i0..i0 +
                    // rows of `a` hold kp pairs each at stride ars, `bp` kp × NR pairs.
                    unsafe {
                        kernel(
                            (ap as *const u32).add(i0 * ars),
                            ars,
                            rows,
                            bp,
                            kp,
                            &init,
                            &mut tile,
                        )
                    };
                    for r in 0..rows {
                        let row = &mut tile[r * NR..r * NR + cols];
                        if let Some(act) = epi.act {
                            act(row);
                        }
                        let at = (i0 + r) * n + j0;
                        if let Some(res) = epi.res {
                            add_widened(row, &res[bi * m * n + at..][..cols]);
                        }
                        // SAFETY: row i0 + r < m, columns j0..j0 + cols ≤ n of batch bi's
                        // m × n output, borrowed until every task has finished; tasks write
                        // disjoint (row, panel) blocks.
                        let dst = unsafe { optr.slice(at, cols) };
                        super::super::simd::map_chunk(dst, row, &|v: f32| T::from_acc(v));
                    }
                }
            });
            if let Rows::Packed(v) = rows {
                crate::pool::give(<i32 as Elem>::wrap(v));
            }
        }
        if let Some(v) = packed_b {
            crate::pool::give(<i32 as Elem>::wrap(v));
        }
        Ok(out)
    }

    /// tile[r][j] = init[j] + Σ_p A[r][p] · B[p][j] for r < rows (≤ MR), j < NR, over `kp`
    /// pairs.
    ///
    /// # Safety
    /// Needs AVX-512F and AVX512-BF16; `ap` points at `rows` rows of `kp` u32 pairs at stride
    /// `ars` (any alignment), `bp` holds kp × NR pairs.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn kernel(
        ap: *const u32,
        ars: usize,
        rows: usize,
        bp: &[i32],
        kp: usize,
        init: &[f32; NR],
        tile: &mut [f32; MR * NR],
    ) {
        match rows {
            6 => kernel_rows::<6>(ap, ars, bp, kp, init, tile),
            5 => kernel_rows::<5>(ap, ars, bp, kp, init, tile),
            4 => kernel_rows::<4>(ap, ars, bp, kp, init, tile),
            3 => kernel_rows::<3>(ap, ars, bp, kp, init, tile),
            2 => kernel_rows::<2>(ap, ars, bp, kp, init, tile),
            _ => kernel_rows::<1>(ap, ars, bp, kp, init, tile),
        }
    }

    /// [`kernel`] for R rows.
    ///
    /// # Safety
    /// As [`kernel`], with R for `rows`.
    #[inline(always)]
    unsafe fn kernel_rows<const R: usize>(
        ap: *const u32,
        ars: usize,
        bp: &[i32],
        kp: usize,
        init: &[f32; NR],
        tile: &mut [f32; MR * NR],
    ) {
        use std::arch::x86_64::*;
        const NV: usize = NR / 16;
        let mut start = [_mm512_setzero_ps(); NV];
        for (v, s) in start.iter_mut().enumerate() {
            *s = _mm512_loadu_ps(init.as_ptr().add(v * 16));
        }
        let mut c = [start; R];
        let bptr = bp.as_ptr();
        for p in 0..kp {
            let mut bv = [_mm512_setzero_si512(); NV];
            for (v, b) in bv.iter_mut().enumerate() {
                *b = _mm512_loadu_si512(bptr.add(p * NR + v * 16) as *const _);
            }
            for (r, cr) in c.iter_mut().enumerate() {
                let a = std::ptr::read_unaligned(ap.add(r * ars + p));
                let av: __m512bh =
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(a as i32));
                for v in 0..NV {
                    cr[v] = _mm512_dpbf16_ps(
                        cr[v],
                        av,
                        std::mem::transmute::<__m512i, __m512bh>(bv[v]),
                    );
                }
            }
        }
        for (r, cr) in c.iter().enumerate() {
            for (v, cv) in cr.iter().enumerate() {
                _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR + v * 16), *cv);
            }
        }
    }
}
