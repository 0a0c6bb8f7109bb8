//! bf16 matmul with the AVX512-BF16 dot-product instruction (`vdpbf16ps`: 16 f32 lanes, each
//! adding a·b over a pair of bf16 values), selected at run time. Returns `None` where the CPU
//! lacks it (the caller widens to f32 and uses the f32 gemm instead).
//!
//! Layout: k is taken in pairs. B is packed per panel of 32 columns as
//! `[pair p][column j][2]` (one zmm = 16 columns × 2 k values), A as rows of u32 pairs, both
//! zero-padded (k to even, rows to MR, columns to NR). The microkernel keeps an MR × NR = 8 × 32
//! tile of f32 accumulators in 16 registers; column panels run in parallel.

use plumb_core::{Result, View};

#[cfg(target_arch = "x86_64")]
const MR: usize = 4;
#[cfg(target_arch = "x86_64")]
const NR: usize = 64;
/// zmm registers per accumulator row
#[cfg(target_arch = "x86_64")]
const NV: usize = NR / 16;

/// The f32 result of a bf16 matmul through `vdpbf16ps`, or `None` when not selected.
///
/// Off unless `PLUMB_CPU_BF16_DOT=1`: measured on the 2-core AVX-512 machine of BENCHMARKS.md,
/// `vdpbf16ps` issues at about 0.9 per ns per core (≈ 59 GFLOP/s), below the f32 FMA path
/// (≈ 140–160 GFLOP/s per core), so widening to f32 and using the f32 gemm is faster there.
pub fn try_matmul_bf16(a: &View, b: &View) -> Result<Option<Vec<f32>>> {
    if selected() {
        return matmul_dpbf16(a, b);
    }
    Ok(None)
}

/// Whether `PLUMB_CPU_BF16_DOT=1` asks for this kernel.
pub fn selected() -> bool {
    std::env::var("PLUMB_CPU_BF16_DOT").is_ok_and(|v| v == "1")
}

/// bf16 matmul with `vdpbf16ps` where the CPU has AVX512-BF16; `None` elsewhere.
pub fn matmul_dpbf16(a: &View, b: &View) -> Result<Option<Vec<f32>>> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bf16")
            && super::simd::level() == super::simd::Level::V4
        {
            return Ok(Some(matmul(a, b)?));
        }
    }
    let _ = (a, b);
    Ok(None)
}

#[cfg(target_arch = "x86_64")]
fn matmul(a: &View, b: &View) -> Result<Vec<f32>> {
    use crate::par;
    use crate::storage::contiguous;
    use half::bf16;
    let d = super::matmul::dims(a, b);
    let (m, k, n) = (d.m, d.k, d.n);
    let av = contiguous::<bf16>("matmul", a)?;
    let bv = contiguous::<bf16>("matmul", b)?;
    let mut out = vec![0f32; d.batch * m * n];
    if m * n == 0 || k == 0 {
        return Ok(out);
    }
    let kp = k.div_ceil(2); // pairs
    let mp = m.div_ceil(MR) * MR;
    let panels = n.div_ceil(NR);
    for bi in 0..d.batch {
        let am = &av[bi * m * k..(bi + 1) * m * k];
        let bm = &bv[bi * k * n..(bi + 1) * k * n];
        // A as u32 pairs, rows padded to MR
        let mut pa = vec![0u32; mp * kp];
        par::zip_chunks_mut(&mut pa, kp, am, k, |dst, row| {
            for (p, o) in dst.iter_mut().enumerate() {
                let lo = row[2 * p].to_bits() as u32;
                let hi = row.get(2 * p + 1).map_or(0, |v| v.to_bits() as u32);
                *o = lo | (hi << 16);
            }
        });
        // B packed per panel: [panel][pair][NR][2] as u16
        let mut pb = vec![0u16; panels * kp * NR * 2];
        par::chunks_mut(&mut pb, kp * NR * 2, |panel, dst| {
            let j0 = panel * NR;
            let cols = NR.min(n - j0);
            for p in 0..kp {
                for kk in 0..2 {
                    let r = 2 * p + kk;
                    if r >= k {
                        continue;
                    }
                    let src = &bm[r * n + j0..r * n + j0 + cols];
                    for (j, v) in src.iter().enumerate() {
                        dst[(p * NR + j) * 2 + kk] = v.to_bits();
                    }
                }
            }
        });
        let ob = &mut out[bi * m * n..(bi + 1) * m * n];
        let ptr = crate::team::SyncPtr::new(ob);
        par::for_each(panels, |panel| {
            let bp = &pb[panel * kp * NR * 2..(panel + 1) * kp * NR * 2];
            let j0 = panel * NR;
            let cols = NR.min(n - j0);
            let mut tile = [0f32; MR * NR];
            for i0 in (0..mp).step_by(MR) {
                let ap = &pa[i0 * kp..(i0 + MR) * kp];
                // SAFETY: try_matmul_bf16 checked avx512f and avx512bf16; ap holds MR rows of kp
                // pairs and bp kp × NR pairs.
                unsafe { kernel(ap, bp, kp, &mut tile) };
                let rows = MR.min(m - i0);
                for r in 0..rows {
                    // SAFETY: rows i0 + r < m and columns j0..j0 + cols < n of the m × n buffer
                    // `ob`, borrowed until every panel task has finished; panels write disjoint
                    // columns.
                    let dst = unsafe { ptr.slice((i0 + r) * n + j0, cols) };
                    dst.copy_from_slice(&tile[r * NR..r * NR + cols]);
                }
            }
        });
    }
    Ok(out)
}

/// tile[MR × NR] = Σ_p A[·, p] · B[p, ·] over `kp` pairs.
///
/// # Safety
/// Needs AVX-512F and AVX512-BF16; `ap` holds MR × kp pairs, `bp` kp × NR × 2 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel(ap: &[u32], bp: &[u16], kp: usize, tile: &mut [f32; MR * NR]) {
    use std::arch::x86_64::*;
    let mut c = [[_mm512_setzero_ps(); NV]; MR];
    let bptr = bp.as_ptr();
    let aptr = ap.as_ptr();
    for p in 0..kp {
        let mut bv: [__m512bh; NV] =
            [std::mem::transmute::<__m512i, __m512bh>(_mm512_setzero_si512()); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            *b = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                bptr.add(p * NR * 2 + v * 32) as *const _,
            ));
        }
        for (r, cr) in c.iter_mut().enumerate() {
            let av: __m512bh = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(
                *aptr.add(r * kp + p) as i32,
            ));
            for v in 0..NV {
                cr[v] = _mm512_dpbf16_ps(cr[v], av, bv[v]);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        for (v, cv) in cr.iter().enumerate() {
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR + v * 16), *cv);
        }
    }
}
