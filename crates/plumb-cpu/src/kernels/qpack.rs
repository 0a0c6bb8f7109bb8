//! Quantized weights repacked with 16 rows in the vector lanes, for decoding (matrix × one or a
//! few activation rows) with AVX-512 VNNI, or with AVX2 (each group as two halves of 8 rows).
//! No other architecture packs (aarch64 keeps the stored order and `qdot_i16.rs`'s NEON).
//!
//! The row-order kernels of `qdot_i16.rs` spend most of their time after the integer dot of each
//! block: converting its 16 partial sums, scaling and adding them into one row's accumulator, and
//! finally reducing that accumulator across lanes. Here lane `r` of every vector belongs to weight
//! row `r` of a group of 16, so one `vpdpwssd` adds two weights × two activations for 16 rows at
//! once and each block ends with a single convert-scale-add for all 16 rows; no lane is ever
//! reduced.
//!
//! Layout of a packed `[n, k]` matrix: `n / 16` groups of 16 rows, then the last `n % 16` rows as
//! stored (GGUF row order). A group holds, for every block `b` of 32 values, 16 blocks' worth of
//! bytes (the same size as the 16 stored blocks, so a packed matrix takes exactly the bytes of
//! the stored one):
//!
//! - the 16 rows' f16 scales `d` (32 bytes), then for q4_1 the 16 offsets `m` (32 bytes);
//! - q4_0 / q4_1: four chunks of 64 bytes, read as 32 little-endian words. Word `2r + h` of
//!   chunk `c` holds in its nibble `s` (bits `4s ..= 4s + 3`) the value `8c + 2s + h` of row `r`,
//!   so `(word >> 4s) & 15` gives, for every row, the pair of values `8c + 2s` and `8c + 2s + 1`
//!   in the i32 lane `r` — ready for `vpdpwssd` against that pair of activations broadcast;
//! - q8_0: eight chunks of 64 bytes; byte `s` of word `2r + h` of chunk `c` is the value
//!   `4c + 2s + h` of row `r` (sign-extended with two shifts).
//!
//! The CPU backend packs a matrix when asked (`Backend::pack_qmatmul_weight`, which the model
//! loaders call for every quantized matrix) and only where [`available`]. Every other reader of a
//! packed storage (copies, downloads, dequantization, views that are not the whole matrix) gets
//! the stored row order back through [`unpack`]; the prefill kernel (`qgemm_i16.rs`) reads packed
//! groups directly, since its own column layout is the same pairs in lanes, and the prefill path
//! without VNNI dequantizes them value-major into gemm's panel ([`dequant_value_major`]).
//! SmolLM2 q4_1 decode on the 2-core build machine (`model_bench`, BENCHMARKS.md models runs 7
//! and 8): 159–183 tok/s before, 176–261 after; with `PLUMB_CPU_SIMD=avx2`, 114–127 → 193–205.

use plumb_core::DType;

/// Weight rows per packed group (the i32 lanes of a zmm register).
pub const GROUP: usize = 16;

/// A quantized matrix `[n, k]` as the kernels read it: in stored row order or packed.
#[derive(Clone, Copy, Debug)]
pub struct QMat<'a> {
    pub dt: DType,
    pub bytes: &'a [u8],
    pub n: usize,
    pub k: usize,
    pub packed: bool,
}

impl<'a> QMat<'a> {
    pub fn row_bytes(&self) -> usize {
        self.dt.storage_bytes(self.k)
    }
    /// Rows held in packed groups; the rows after them are in stored order.
    pub fn packed_rows(&self) -> usize {
        if self.packed {
            self.n / GROUP * GROUP
        } else {
            0
        }
    }
    /// The bytes of group `g` (rows `16g .. 16g + 16`).
    pub fn group(&self, g: usize) -> &'a [u8] {
        let s = GROUP * self.row_bytes();
        &self.bytes[g * s..(g + 1) * s]
    }
    /// Rows `j0 .. j0 + len` in stored order; all of them at or past [`QMat::packed_rows`].
    pub fn plain_rows(&self, j0: usize, len: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.bytes[j0 * rb..(j0 + len) * rb]
    }
}

/// Which kernel reads packed groups on this CPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kernel {
    /// 512-bit vectors and `vpdpwssd`: one group per vector
    Vnni512,
    /// 256-bit `vpmaddwd`: each group as two halves of 8 rows
    Avx2,
}

fn kernel() -> Option<Kernel> {
    use super::simd::{level, Level};
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    if super::qgemm_i16::available(DType::Q4_1) {
        Some(Kernel::Vnni512)
    } else if level() != Level::Baseline {
        Some(Kernel::Avx2)
    } else {
        None
    }
}

/// Whether matrices of `dt` are packed on this CPU: x86-64 with AVX-512 VNNI, or AVX2 (other
/// CPUs keep the stored order and the kernels of `qdot_i16.rs`).
pub fn available(dt: DType) -> bool {
    matches!(dt, DType::Q4_0 | DType::Q4_1 | DType::Q8_0) && kernel().is_some()
}

/// Rows `j0 .. j0 + len` of `w` in stored row order (`j0` a multiple of 16 when `w` is packed):
/// borrowed when `w` is not packed, else unpacked into `buf`.
pub fn stored_rows<'a>(w: QMat<'a>, j0: usize, len: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    let rb = w.row_bytes();
    let packed_end = w.packed_rows().min(j0 + len);
    if packed_end <= j0 {
        return w.plain_rows(j0, len);
    }
    buf.clear();
    buf.resize(len * rb, 0);
    let head = (packed_end - j0) * rb;
    let src = &w.bytes[j0 * rb..packed_end * rb];
    for (o, g) in buf[..head]
        .chunks_exact_mut(GROUP * rb)
        .zip(src.chunks_exact(GROUP * rb))
    {
        convert_group(w.dt, g, o, rb, false);
    }
    buf[head..].copy_from_slice(w.plain_rows(packed_end, j0 + len - packed_end));
    buf
}

/// 64-byte chunks in a packed block's payload, and pairs of values per chunk (each pair one
/// word per row: `(word >> 4s) & 15` for q4, the sign-extended bytes for q8_0).
#[cfg(target_arch = "x86_64")]
pub(super) const fn chunks(dt: DType) -> (usize, usize) {
    if matches!(dt, DType::Q8_0) {
        (8, 2)
    } else {
        (4, 4)
    }
}

/// Bytes of a packed block's scales: 16 `d`, and for q4_1 16 `m`.
const fn scale_bytes(dt: DType) -> usize {
    if matches!(dt, DType::Q4_1) {
        4 * GROUP
    } else {
        2 * GROUP
    }
}

/// Where value `j` of row `r` sits in a packed block's payload: (byte, bit shift, bit width).
#[inline(always)]
fn slot(dt: DType, r: usize, j: usize) -> (usize, u32, u32) {
    let h = j % 2;
    if dt == DType::Q8_0 {
        let (c, s) = (j / 4, (j % 4) / 2);
        (c * 64 + (2 * r + h) * 2 + s, 0, 8)
    } else {
        let (c, s) = (j / 8, (j % 8) / 2);
        (c * 64 + (2 * r + h) * 2 + s / 2, 4 * (s as u32 % 2), 4)
    }
}

/// Where value `j` sits in a stored block (after its scales): (byte, bit shift, bit width).
#[inline(always)]
fn stored_slot(dt: DType, j: usize) -> (usize, u32, u32) {
    match dt {
        DType::Q8_0 => (2 + j, 0, 8),
        _ => {
            let o = if dt == DType::Q4_0 { 2 } else { 4 };
            (o + j % 16, 4 * (j / 16) as u32, 4)
        }
    }
}

#[inline(always)]
fn get(b: &[u8], (at, shift, bits): (usize, u32, u32)) -> u8 {
    (b[at] >> shift) & (((1u16 << bits) - 1) as u8)
}

#[inline(always)]
fn put(b: &mut [u8], (at, shift, _): (usize, u32, u32), v: u8) {
    b[at] |= v << shift;
}

/// Move 16 stored rows (`src`, `rb` bytes each) into one packed group (`dst`, zeroed), or back
/// (`to_packed` false: `src` the group, `dst` the zeroed rows).
fn convert_group(dt: DType, src: &[u8], dst: &mut [u8], rb: usize, to_packed: bool) {
    let bb = dt.block_bytes();
    let sb = scale_bytes(dt);
    for b in 0..rb / bb {
        for r in 0..GROUP {
            // this row's block in the stored rows, and the group's block
            let (s_at, p_at) = (r * rb + b * bb, b * GROUP * bb);
            // scales: d, then q4_1's m
            let mut scale = |s: usize, p: usize| {
                let (from, to) = if to_packed { (s, p) } else { (p, s) };
                dst[to..to + 2].copy_from_slice(&src[from..from + 2]);
            };
            scale(s_at, p_at + 2 * r);
            if dt == DType::Q4_1 {
                scale(s_at + 2, p_at + 2 * GROUP + 2 * r);
            }
            for j in 0..32 {
                let (st, pk) = (stored_slot(dt, j), slot(dt, r, j));
                let pk = (pk.0 + p_at + sb, pk.1, pk.2);
                let st = (st.0 + s_at, st.1, st.2);
                if to_packed {
                    put(dst, pk, get(src, st));
                } else {
                    put(dst, st, get(src, pk));
                }
            }
        }
    }
}

/// `w` [n, k] (stored row order, `k` a multiple of 32) in the packed layout.
pub fn pack(dt: DType, w: &[u8], n: usize, k: usize) -> Vec<u8> {
    repack(dt, w, n, k, true)
}

/// A packed `[n, k]` matrix back in stored row order.
pub fn unpack(dt: DType, p: &[u8], n: usize, k: usize) -> Vec<u8> {
    repack(dt, p, n, k, false)
}

/// [`convert_group`] towards the packed layout, writing each payload byte once from the
/// nibbles (or bytes) that fill it. The value-by-value conversion made packing 8% of a
/// `model_bench` decode run's profile (load included); with this, `plumb generate` of SmolLM2
/// q4_1 with `--max-tokens 1` (load, one token, exit; warm file cache) went 0.75–0.76 → 0.62–0.63 s
/// on the 2-core build machine.
fn pack_group(dt: DType, src: &[u8], dst: &mut [u8], rb: usize) {
    let (bb, sb) = (dt.block_bytes(), scale_bytes(dt));
    let qo = if dt == DType::Q4_1 { 4 } else { 2 };
    for (b, out) in dst.chunks_exact_mut(GROUP * bb).enumerate() {
        let (scales, pay) = out.split_at_mut(sb);
        for r in 0..GROUP {
            let blk = &src[r * rb + b * bb..][..bb];
            scales[2 * r..2 * r + 2].copy_from_slice(&blk[..2]);
            if dt == DType::Q4_1 {
                scales[2 * GROUP + 2 * r..2 * GROUP + 2 * r + 2].copy_from_slice(&blk[2..4]);
            }
            let q = &blk[qo..];
            for h in 0..2 {
                let w = 2 * (2 * r + h);
                if dt == DType::Q8_0 {
                    for c in 0..8 {
                        pay[c * 64 + w] = q[4 * c + h];
                        pay[c * 64 + w + 1] = q[4 * c + 2 + h];
                    }
                } else {
                    let nib = |j: usize| if j < 16 { q[j] & 15 } else { q[j - 16] >> 4 };
                    for c in 0..4 {
                        let j = 8 * c + h;
                        pay[c * 64 + w] = nib(j) | nib(j + 2) << 4;
                        pay[c * 64 + w + 1] = nib(j + 4) | nib(j + 6) << 4;
                    }
                }
            }
        }
    }
}

fn repack(dt: DType, src: &[u8], n: usize, k: usize, to_packed: bool) -> Vec<u8> {
    let rb = dt.storage_bytes(k);
    let head = n / GROUP * GROUP * rb;
    let mut out = vec![0u8; src.len()];
    out[head..].copy_from_slice(&src[head..]);
    if rb > 0 {
        crate::par::zip_chunks_mut(
            &mut out[..head],
            GROUP * rb,
            &src[..head],
            GROUP * rb,
            |o, s| {
                if to_packed {
                    pack_group(dt, s, o, rb)
                } else {
                    convert_group(dt, s, o, rb, false)
                }
            },
        );
    }
    out
}

/// Rows `j0 .. j0 + cols` of a packed `w` dequantized to f32 in value-major order: value `e` of
/// row `j` at `out[e · cols + j − j0]` (`out` holds `k · cols`; `j0` a multiple of 16). The
/// prefill path without AVX-512 VNNI multiplies such a panel with the f32 gemm; a group's words
/// hold 16 rows side by side, so this order is the cheap one to write (through the stored order
/// it cost that path half its speed: SmolLM2 q4_1 prefill with `PLUMB_CPU_SIMD=avx2` 430–446
/// tok/s unpacked, 243–248 packed through the stored order, 505–636 value-major). Only where
/// [`available`].
pub fn dequant_value_major(w: QMat, j0: usize, cols: usize, out: &mut [f32]) {
    let (dt, k) = (w.dt, w.k);
    let bb = dt.block_bytes();
    let groups_end = w.packed_rows().clamp(j0, j0 + cols);
    // one task per block of 32 values: the slab of 32 · cols outputs it writes
    crate::par::chunks_mut(&mut out[..k * cols], 32 * cols, |b, slab| {
        let mut g0 = j0;
        while g0 < groups_end {
            let blk = &w.group(g0 / GROUP)[b * GROUP * bb..(b + 1) * GROUP * bb];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: available() means AVX2, FMA and F16C at least; blk is one packed block of
            // 16 rows; the slab holds 32 values × cols, and columns g0 − j0 .. + 16 are inside.
            unsafe {
                avx2::block_value_major(dt, blk.as_ptr(), slab, cols, g0 - j0)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (blk, &slab);
            g0 += GROUP;
        }
        let mut vals = [0f32; 32];
        for j in groups_end..j0 + cols {
            super::qdot::dequant_row(dt, &w.plain_rows(j, 1)[b * bb..(b + 1) * bb], &mut vals);
            for (e, &v) in vals.iter().enumerate() {
                slab[e * cols + j - j0] = v;
            }
        }
    });
}

/// out [rows, n] = x [rows, k] × wᵀ for a packed `w` with few activation rows (decoding).
/// Only where [`available`]; `xs` finite.
pub fn qmatmul_rows(xs: &[f32], w: QMat, rows: usize) -> Vec<f32> {
    rows_with(kernel(), xs, w, rows)
}

/// [`qmatmul_rows`] on the given kernel (which the CPU must have).
fn rows_with(kern: Option<Kernel>, xs: &[f32], w: QMat, rows: usize) -> Vec<f32> {
    let (n, k) = (w.n, w.k);
    let Some(kern) = kern else {
        // not reached (nothing is packed without a kernel); the stored order serves anyway
        let mut buf = Vec::new();
        let wb = stored_rows(w, 0, n, &mut buf);
        return super::qdot::qmatmul_rows(xs, wb, w.dt, rows, n, k);
    };
    let xq: Vec<_> = xs
        .chunks_exact(k)
        .map(super::qdot_i16::quantize_i16)
        .collect();
    // every element is written below
    let mut out = crate::storage::alloc_overwrite::<f32>(rows * n);
    let groups = w.packed_rows() / GROUP;
    let tail = n - groups * GROUP;
    let bounds = guided(groups, crate::par::threads());
    let gtasks = bounds.len() - 1;
    let tasks = gtasks + usize::from(tail > 0);
    let optr = crate::team::SyncPtr::new(&mut out);
    crate::par::for_each(tasks, |task| {
        if task >= gtasks {
            let wt = w.plain_rows(groups * GROUP, tail);
            for (r, x) in xq.iter().enumerate() {
                // SAFETY: the last `tail` columns of row r lie inside out; only this task
                // writes them.
                let o = unsafe { optr.slice(r * n + groups * GROUP, tail) };
                super::qdot_i16::dot_rows(w.dt, wt, w.row_bytes(), x, o);
            }
            return;
        }
        let g0 = bounds[task];
        let g1 = bounds[task + 1];
        for g in g0..g1 {
            for (r, x) in xq.iter().enumerate() {
                // SAFETY: columns 16g .. 16g + 16 of row r lie inside out (g < n / 16); only
                // this task writes them.
                let o = unsafe { optr.slice(r * n + g * GROUP, GROUP) };
                #[cfg(target_arch = "x86_64")]
                // SAFETY: kernel() checked the CPU's features (AVX-512 BW and VNNI, or AVX2,
                // FMA and F16C); the group holds k / 32 packed blocks, x as many.
                unsafe {
                    match kern {
                        Kernel::Vnni512 => avx512::group(w.dt, w.group(g), x, o),
                        Kernel::Avx2 => avx2::group(w.dt, w.group(g), x, o),
                    }
                };
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (o, x, kern);
            }
        }
    });
    out
}

/// Task boundaries over `groups` packed groups, guided: each task takes the groups left divided
/// by the threads, so with two threads the first takes half the matrix and the second the next
/// quarter, then the next eighth when it is done, and so on: each thread streams long
/// contiguous runs of the weight, and the last tasks are small enough to end the product
/// evenly. Equal tasks of up to 16 groups (about eight per thread), which this replaced, had
/// each thread jump to a new place in memory every 6–160 KiB, restarting the prefetchers:
/// `qdecode_probe` on the 2-core build machine streamed 23.9–26.6 GB/s that way against
/// 30.2–34.5 guided, and SmolLM2 q4_1 decode in `model_bench` went from 209–217 to 229–271
/// tok/s in alternating runs (BENCHMARKS.md, "Fourth session on the Zen 4").
fn guided(groups: usize, threads: usize) -> Vec<usize> {
    let mut bounds = vec![0];
    let mut g = 0;
    while g < groups {
        g += ((groups - g) / threads.max(1)).max(1);
        bounds.push(g);
    }
    bounds
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use super::{chunks, prefetch, scale_bytes, GROUP};
    use crate::kernels::qdot_i16::I16Row;
    use crate::kernels::qgemm_i16::avx512::dpwssd;
    use plumb_core::DType;
    use std::arch::x86_64::*;

    /// The pairs of one 64-byte chunk `w` (see [`super::chunks`]): vector `s` holds, in i32
    /// lane r, the pair `s` of the chunk for row r, as two i16 values.
    #[inline(always)]
    pub(in crate::kernels) unsafe fn pairs(dt: DType, w: __m512i) -> [__m512i; 4] {
        if dt == DType::Q8_0 {
            let lo = _mm512_srai_epi16::<8>(_mm512_slli_epi16::<8>(w));
            return [lo, _mm512_srai_epi16::<8>(w), lo, lo];
        }
        let m4 = _mm512_set1_epi16(0x0f);
        [
            _mm512_and_si512(w, m4),
            _mm512_and_si512(_mm512_srli_epi16::<4>(w), m4),
            _mm512_and_si512(_mm512_srli_epi16::<8>(w), m4),
            _mm512_srli_epi16::<12>(w),
        ]
    }

    /// The 16 rows of packed group `g` dotted with `x` into `out[..16]`.
    ///
    /// # Safety
    /// AVX-512 F/BW and VNNI present; `g` holds `x.d.len()` packed blocks of `dt`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn group(dt: DType, g: &[u8], x: &I16Row, out: &mut [f32]) {
        match dt {
            DType::Q4_0 => kernel::<0>(g, x, out),
            DType::Q4_1 => kernel::<1>(g, x, out),
            _ => kernel::<2>(g, x, out),
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn kernel<const KIND: u8>(g: &[u8], x: &I16Row, out: &mut [f32]) {
        let dt = [DType::Q4_0, DType::Q4_1, DType::Q8_0][KIND as usize];
        let step = GROUP * dt.block_bytes();
        let sb = scale_bytes(dt);
        let nb = x.d.len().min(g.len() / step);
        let (nc, np) = chunks(dt);
        let xq = x.q.as_ptr() as *const i32;
        let mut acc = _mm512_setzero_ps();
        for b in 0..nb {
            let blk = g.as_ptr().add(b * step);
            prefetch(blk, step);
            let pay = blk.add(sb);
            let xp = xq.add(b * 16);
            // two accumulators, so consecutive pairs do not wait on each other
            let mut s = [_mm512_setzero_si512(); 2];
            for c in 0..nc {
                let v = pairs(dt, _mm512_loadu_si512(pay.add(64 * c) as _));
                for (i, v) in v.iter().take(np).enumerate() {
                    let p = np * c + i;
                    dpwssd(&mut s[i % 2], *v, _mm512_set1_epi32(*xp.add(p)));
                }
            }
            let f = _mm512_cvtepi32_ps(_mm512_add_epi32(s[0], s[1]));
            let d = _mm512_cvtph_ps(_mm256_loadu_si256(blk as _));
            let dx = _mm512_set1_ps(*x.d.get_unchecked(b));
            let xs = *x.sum.get_unchecked(b);
            acc = match KIND {
                // q4_0 values are nibble − 8: Σ (q − 8)·x = Σ q·x − 8·Σx
                0 => _mm512_fmadd_ps(d, _mm512_fmsub_ps(f, dx, _mm512_set1_ps(8.0 * xs)), acc),
                1 => {
                    let m = _mm512_cvtph_ps(_mm256_loadu_si256(blk.add(2 * GROUP) as _));
                    let a = _mm512_fmadd_ps(d, _mm512_mul_ps(f, dx), acc);
                    _mm512_fmadd_ps(m, _mm512_set1_ps(xs), a)
                }
                _ => _mm512_fmadd_ps(d, _mm512_mul_ps(f, dx), acc),
            };
        }
        _mm512_storeu_ps(out.as_mut_ptr(), acc);
    }
}

/// Bytes ahead of the current block that the kernels prefetch. Without it the loads of each
/// chunk stalled (`perf annotate`: the shift after each load held most samples). SmolLM2 q4_1
/// decode in `model_bench` on the 2-core build machine (AVX-512 kernel), one run each: 0 → 164
/// tok/s, 1024 → 194, 2048 → 179–233, 4096 → 234–261, 8192 → 248–270, 16384 → 238; `bench_ops
/// qmatvec` q4_1 at 2048 / 4096 / 8192: 47–51 / 45–52 / 33–47 GB/s.
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 4096;

/// Prefetch the cache lines `PREFETCH` bytes past the `step` bytes at `blk`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch(blk: *const u8, step: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let mut o = 0;
    while o < step {
        _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH + o) as *const i8);
        o += 64;
    }
}

/// AVX2: a group as two halves of 8 rows (bytes 0–31 and 32–63 of every 64-byte chunk), each
/// pair of values through `vpmaddwd` and an add.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{chunks, prefetch, scale_bytes, GROUP};
    use crate::kernels::qdot_i16::I16Row;
    use plumb_core::DType;
    use std::arch::x86_64::*;

    /// The 16 rows of packed group `g` dotted with `x` into `out[..16]`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C present; `g` holds `x.d.len()` packed blocks of `dt`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn group(dt: DType, g: &[u8], x: &I16Row, out: &mut [f32]) {
        match dt {
            DType::Q4_0 => kernel::<0>(g, x, out),
            DType::Q4_1 => kernel::<1>(g, x, out),
            _ => kernel::<2>(g, x, out),
        }
    }

    /// [`super::avx512::pairs`] for half a chunk (8 rows).
    #[inline(always)]
    unsafe fn pairs(dt: DType, w: __m256i) -> [__m256i; 4] {
        if dt == DType::Q8_0 {
            let lo = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(w));
            return [lo, _mm256_srai_epi16::<8>(w), lo, lo];
        }
        let m4 = _mm256_set1_epi16(0x0f);
        [
            _mm256_and_si256(w, m4),
            _mm256_and_si256(_mm256_srli_epi16::<4>(w), m4),
            _mm256_and_si256(_mm256_srli_epi16::<8>(w), m4),
            _mm256_srli_epi16::<12>(w),
        ]
    }

    /// One packed block of 16 rows dequantized into `slab` (32 values × `cols`, value-major)
    /// at columns `col0 .. col0 + 16`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C present; `blk` one packed block of `dt`; `col0 + 16 ≤ cols` and
    /// `slab` at least `32 · cols` long.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn block_value_major(
        dt: DType,
        blk: *const u8,
        slab: &mut [f32],
        cols: usize,
        col0: usize,
    ) {
        let pay = blk.add(scale_bytes(dt));
        let o = slab.as_mut_ptr();
        for h in 0..2 {
            let scales = |at: usize| _mm256_cvtph_ps(_mm_loadu_si128(blk.add(at + 16 * h) as _));
            let d = scales(0);
            let m = match dt {
                DType::Q4_1 => scales(2 * GROUP),
                DType::Q4_0 => _mm256_mul_ps(d, _mm256_set1_ps(-8.0)),
                _ => _mm256_setzero_ps(),
            };
            // i32 lane r of v holds values e (low word) and e + 1 (high word) of row 8h + r
            let put = |e: usize, v: __m256i, signed: bool| {
                let (lo, hi) = if signed {
                    let lo = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(v));
                    (lo, _mm256_srai_epi32::<16>(v))
                } else {
                    let lo = _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
                    (lo, _mm256_srli_epi32::<16>(v))
                };
                for (i, q) in [(e, lo), (e + 1, hi)] {
                    let f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);
                    _mm256_storeu_ps(o.add(i * cols + col0 + 8 * h), f);
                }
            };
            let (nc, np) = chunks(dt);
            for c in 0..nc {
                let v = pairs(dt, _mm256_loadu_si256(pay.add(64 * c + 32 * h) as _));
                for (i, v) in v.iter().take(np).enumerate() {
                    put(2 * (np * c + i), *v, dt == DType::Q8_0);
                }
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn kernel<const KIND: u8>(g: &[u8], x: &I16Row, out: &mut [f32]) {
        let dt = [DType::Q4_0, DType::Q4_1, DType::Q8_0][KIND as usize];
        let step = GROUP * dt.block_bytes();
        let sb = scale_bytes(dt);
        let nb = x.d.len().min(g.len() / step);
        let (nc, np) = chunks(dt);
        let xq = x.q.as_ptr() as *const i32;
        let mut acc = [_mm256_setzero_ps(); 2];
        for b in 0..nb {
            let blk = g.as_ptr().add(b * step);
            prefetch(blk, step);
            let pay = blk.add(sb);
            let xp = xq.add(b * 16);
            let pair = |p: usize| _mm256_set1_epi32(*xp.add(p));
            let dx = _mm256_set1_ps(*x.d.get_unchecked(b));
            let xs = *x.sum.get_unchecked(b);
            for (h, acc) in acc.iter_mut().enumerate() {
                let mut s = [_mm256_setzero_si256(); 2];
                for c in 0..nc {
                    let v = pairs(dt, _mm256_loadu_si256(pay.add(64 * c + 32 * h) as _));
                    for (i, v) in v.iter().take(np).enumerate() {
                        let prod = _mm256_madd_epi16(*v, pair(np * c + i));
                        s[i % 2] = _mm256_add_epi32(s[i % 2], prod);
                    }
                }
                let f = _mm256_cvtepi32_ps(_mm256_add_epi32(s[0], s[1]));
                let scales = |o: usize| _mm256_cvtph_ps(_mm_loadu_si128(blk.add(o + 16 * h) as _));
                let d = scales(0);
                *acc = match KIND {
                    0 => {
                        let t = _mm256_fmsub_ps(f, dx, _mm256_set1_ps(8.0 * xs));
                        _mm256_fmadd_ps(d, t, *acc)
                    }
                    1 => {
                        let a = _mm256_fmadd_ps(d, _mm256_mul_ps(f, dx), *acc);
                        _mm256_fmadd_ps(scales(2 * GROUP), _mm256_set1_ps(xs), a)
                    }
                    _ => _mm256_fmadd_ps(d, _mm256_mul_ps(f, dx), *acc),
                };
            }
        }
        _mm256_storeu_ps(out.as_mut_ptr(), acc[0]);
        _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1]);
    }
}

#[cfg(test)]
#[path = "qpack_tests.rs"]
mod tests;
