//! `matmul_f32` for a few rows (an encoder's batch of one sentence): c = a · b (+ bias), where
//! `a` is up to [`MAX_ROWS`] rows and `b` a row-major [k, n] matrix (a linear layer's weight
//! as the loaders keep it, in-dim-major), read where it lies instead of packed first.
//!
//! With few rows each weight is used for few multiply-adds, and a model's weights come from
//! L3 on every call (MiniLM's 42 MB of linear weights against 2 MB of L2 per core), so the
//! speed of a call is how well reading `b` overlaps the arithmetic. Each thread takes a run of
//! strips of 64 columns, and a thread done with its run takes strips from the back of another's
//! ([`Runs`]: on a shared machine one thread often runs late or slow, and the other waited for
//! it at the end of every call). Each strip goes in chunks of [`KC`] rows of `b` (32 KiB):
//! - the first group of up to 6 rows of `a` reads the chunk from `b` and copies it into an
//!   aligned buffer (rows of a wide matrix lie a multiple of 64 bytes apart, so read in place
//!   they would crowd a few L1 sets), the other groups read the copy from L1;
//! - each group multiplies it into 6 × 64 values held in 24 AVX-512 registers;
//! - while it does, each group asks for its share of the next chunk's rows (the next strip's
//!   first chunk after the last one) to be fetched into L2, so the next first group finds them
//!   there instead of waiting on L3.
//!
//! Measured on the 2-core AVX-512 build machine (`examples/rows_probe.rs`, one thread, 40 rows,
//! weights cycling through 40 MB): 122–142 GFLOP/s against the gemm crate's 118–143 for the
//! shapes of MiniLM; MiniLM at batch one (`model_bench`, alternating with `PLUMB_CPU_ROWS=0`):
//! +1–7% in each of 7 paired rounds. AVX-512 only (x86-64); elsewhere, and for more rows, the
//! gemm crate runs.
//!
//! A linear layer's weight can instead be packed once at load as strips ([`PackedStrips`]:
//! each strip's k rows of 64 values one after another). Each chunk is then one contiguous
//! 32 KiB block: no copy, and the hardware prefetcher streams it, where rows 6 KiB apart from
//! L3 or memory left the kernel waiting. On the AMD Zen 4 build machine (`COLD=1
//! PLUMB_NUM_THREADS=1 rows_probe`: one thread, 40 rows, weights cycling through 40 MB) that
//! took MiniLM's shapes from 70–80 GFLOP/s in place to 100–102; at 1536 rows (`M=1536`) it is
//! level with the gemm crate (104–110 against 106–113 GFLOP/s),
//! so products with a packed weight take this kernel at any number of rows: more than
//! [`MAX_ROWS`] are split into groups of rows, one task each (each group's strips split between
//! tasks too where there are fewer groups than threads).

use super::unary::RowMap;
#[cfg(target_arch = "x86_64")]
use crate::par::Runs;

/// Most rows of `a` this kernel takes; more go to the gemm crate, whose packing then pays.
pub const MAX_ROWS: usize = 96;

/// Columns per strip (four AVX-512 vectors).
pub const STRIP: usize = 64;

/// Rows of `b` per chunk: 128 rows of a 64-column strip are 32 KiB.
#[cfg(target_arch = "x86_64")]
const KC: usize = 128;

/// Rows of `a` per register block.
#[cfg(target_arch = "x86_64")]
pub(super) const ROWS: usize = 6;

/// How many rows of `b` ahead the first register block of a run's first chunk prefetches
/// (nothing fetched that chunk earlier).
#[cfg(target_arch = "x86_64")]
const AHEAD: usize = 24;

/// Whether this kernel runs an m × k × n product here: AVX-512 in this CPU (and the dispatch
/// level), 1 ≤ m ≤ [`MAX_ROWS`], k ≥ 1, n ≥ 1.
pub fn applies(m: usize, k: usize, n: usize) -> bool {
    (1..=MAX_ROWS).contains(&m)
        && k > 0
        && n > 0
        && cfg!(target_arch = "x86_64")
        && super::simd::level() == super::simd::Level::V4
}

/// Whether products with a weight packed as [`PackedStrips`] run here (at any number of rows):
/// AVX-512 in this CPU (and the dispatch level), and `PLUMB_CPU_ROWS` not 0; the loaders then
/// pack f32 linear weights of a multiple of [`STRIP`] columns so.
pub fn packs_strips() -> bool {
    applies(1, 1, 1) && !super::matmul::rows_kernels_off()
}

/// Operands of [`matmul_rows`]: `a` m rows of k (row stride `lda`, unit column stride); `b` k
/// rows of n (see [`B`]).
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub a: &'a [f32],
    pub lda: usize,
    pub b: B<'a>,
    pub ldb: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// Where and how [`Rows`]' `b` lies.
#[derive(Clone, Copy)]
pub enum B<'a> {
    /// Row-major, row stride `ldb` (at most [`MAX_ROWS`] rows of `a`).
    Rows(&'a [f32]),
    /// The data of a [`PackedStrips`] (n a multiple of [`STRIP`], `ldb` = [`STRIP`]).
    Strips(&'a [f32]),
    /// The data of an f16 [`PackedStrips`], as `Strips`: the first register block widens each
    /// chunk to f32 into L1 for the others (f16 weights on CPUs without f16 arithmetic).
    StripsF16(&'a [half::f16]),
}

impl B<'_> {
    fn len(&self) -> usize {
        match self {
            B::Rows(b) | B::Strips(b) => b.len(),
            B::StripsF16(b) => b.len(),
        }
    }
    /// Bytes per value.
    fn size(&self) -> usize {
        match self {
            B::StripsF16(_) => 2,
            _ => 4,
        }
    }
    fn strips(&self) -> bool {
        !matches!(self, B::Rows(_))
    }
}

impl Rows<'_> {
    /// Every element the strides address lies inside `a` and `b`.
    fn in_bounds(&self) -> bool {
        let last = |rows: usize, ld: usize, cols: usize| (rows - 1) * ld + cols;
        let b_ok = if self.b.strips() {
            self.ldb == STRIP && self.n.is_multiple_of(STRIP) && self.k * self.n <= self.b.len()
        } else {
            self.ldb >= self.n && last(self.k, self.ldb, self.n) <= self.b.len()
        };
        self.m > 0
            && self.k > 0
            && self.n > 0
            && self.lda >= self.k
            && last(self.m, self.lda, self.k) <= self.a.len()
            && b_ok
    }

    /// The address of b's row `p` at column `c0` (the start of a strip); rows of a strip lie
    /// `ldb` values apart either way.
    ///
    /// # Safety
    /// The operands are in bounds, `p` < k and `c0` < n.
    #[cfg(target_arch = "x86_64")]
    unsafe fn b_at(&self, p: usize, c0: usize) -> *const u8 {
        match self.b {
            B::Rows(b) => b.as_ptr().add(p * self.ldb + c0) as *const u8,
            B::Strips(b) => b.as_ptr().add(c0 * self.k + p * STRIP) as *const u8,
            B::StripsF16(b) => b.as_ptr().add(c0 * self.k + p * STRIP) as *const u8,
        }
    }
}

/// An f32 (or f16) weight [k, n] packed once (at load) for [`matmul_rows`]: strip s (columns
/// 64·s .. 64·s + 64) holds its k rows of [`STRIP`] values one after another, from a 64-byte
/// boundary (each f32 row of a strip one cache line: a load that straddles two costs a second
/// load on Intel cores).
#[derive(Debug)]
pub struct PackedStrips<E = f32> {
    data: Vec<E>,
    /// where the strips start in `data` (its first 64-byte boundary)
    off: usize,
    k: usize,
    n: usize,
}

packed_dims!(PackedStrips<f32>);
packed_dims!(PackedStrips<half::f16>);

impl<E: crate::storage::Elem + Default> PackedStrips<E> {
    /// Pack a row-major [k, n] matrix; `None` where it is empty, n is not a multiple of
    /// [`STRIP`] or `b` is shorter than k · n.
    pub fn pack(b: &[E], k: usize, n: usize) -> Option<PackedStrips<E>> {
        if k == 0 || n == 0 || !n.is_multiple_of(STRIP) || b.len() < k * n {
            return None;
        }
        // values to spare, to start at a 64-byte boundary (the values are aligned to their size)
        let spare = 64 / std::mem::size_of::<E>() - 1;
        let mut data = crate::storage::alloc_overwrite::<E>(k * n + spare);
        let off = data.as_ptr().align_offset(64);
        crate::par::chunks_mut(&mut data[off..off + k * n], k * STRIP, |s, strip| {
            for (p, row) in strip.chunks_exact_mut(STRIP).enumerate() {
                row.copy_from_slice(&b[p * n + s * STRIP..][..STRIP]);
            }
        });
        Some(PackedStrips { data, off, k, n })
    }
    /// The packed values, as [`B::Strips`] or [`B::StripsF16`].
    pub fn data(&self) -> &[E] {
        &self.data[self.off..self.off + self.k * self.n]
    }
    /// The row-major [k, n] values.
    pub fn unpack(&self) -> Vec<E> {
        let (k, n) = (self.k, self.n);
        let mut out = vec![E::default(); k * n];
        for (s, strip) in self.data().chunks_exact(k * STRIP).enumerate() {
            for (p, row) in strip.chunks_exact(STRIP).enumerate() {
                out[p * n + s * STRIP..][..STRIP].copy_from_slice(row);
            }
        }
        out
    }
}

/// c = a · b (+ `bias`, n values, on every row) as a contiguous m × n vector; `None` where
/// [`applies`] is false (any m ≥ 1 with `strips`) or the operands do not hold what their
/// strides address.
///
/// With `act`, each row of each strip goes through it once its last chunk is stored (while it
/// is in L1): a linear layer's activation. Then `res` (m × n values, row-major) is added the same
/// way: the skip connection after a linear layer.
pub fn matmul_rows(
    x: Rows,
    bias: Option<&[f32]>,
    act: Option<RowMap<f32>>,
    res: Option<&[f32]>,
) -> Option<Vec<f32>> {
    let rows_ok = match x.b.strips() {
        true => x.m > 0 && applies(1, x.k, x.n),
        false => applies(x.m, x.k, x.n),
    };
    if !rows_ok
        || !x.in_bounds()
        || bias.is_some_and(|b| b.len() != x.n)
        || res.is_some_and(|r| r.len() != x.m * x.n)
    {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // every element is written below (the first chunk of each strip stores all its rows)
        // before the length is set: a pooled buffer with stale values or fresh capacity, never
        // zeroed first
        let len = x.m * x.n;
        let mut out = crate::pool::take::<f32>(len).unwrap_or_else(|| Vec::with_capacity(len));
        let c = crate::team::SyncPtr::spare(&mut out);
        let strips = x.n.div_ceil(STRIP);
        // up to MAX_ROWS rows: one group, its strips split into one run per thread; more: groups
        // of at most MAX_ROWS rows (whole register blocks), a multiple of the threads in
        // number, and where that leaves threads over, each group's strips in runs too
        let threads = crate::par::threads().max(1);
        let groups = match x.m <= MAX_ROWS {
            true => 1,
            false => x.m.div_ceil(MAX_ROWS).next_multiple_of(threads),
        };
        let per = x.m.div_ceil(groups).next_multiple_of(ROWS);
        let groups = x.m.div_ceil(per);
        let parts = threads.div_ceil(groups).clamp(1, strips);
        let runs: Vec<Runs> = (0..groups).map(|_| Runs::new(strips, parts)).collect();
        crate::par::for_each(groups * parts, |t| {
            let (g, part) = (t / parts, t % parts);
            let i0 = g * per;
            let sub = Rows {
                a: &x.a[i0 * x.lda..],
                m: per.min(x.m - i0),
                ..x
            };
            // SAFETY: AVX-512 (`applies`); the operands hold what they address (`in_bounds`);
            // rows i0 .. i0 + sub.m of `out` belong to group g, and the columns of each strip
            // in them to the task that took it from the group's runs
            unsafe {
                strips_of(
                    sub,
                    bias,
                    act,
                    res.map(|r| &r[i0 * x.n..]),
                    c.ptr().add(i0 * x.n),
                    &runs[g],
                    part,
                )
            }
        });
        // SAFETY: the tasks wrote all m × n elements (see above) and have finished
        unsafe { out.set_len(len) };
        Some(out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = act;
        None
    }
}

/// One chunk of one strip: rows k0 .. k0 + kc of b, columns c0 .. c0 + cols.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Chunk {
    c0: usize,
    cols: usize,
    k0: usize,
    kc: usize,
}

/// Chunk `j` of strip `s`.
#[cfg(target_arch = "x86_64")]
fn chunk(x: Rows, s: usize, j: usize) -> Chunk {
    let (c0, k0) = (s * STRIP, j * KC);
    Chunk {
        c0,
        cols: STRIP.min(x.n - c0),
        k0,
        kc: KC.min(x.k - k0),
    }
}

/// The columns of task `t`'s strips of every row of c (row stride n), chunk by chunk: the strips
/// of its run in order, then strips taken from the back of the others' runs. While it computes
/// one chunk, each register block fetches its share of the next chunk's rows into L2 (after a
/// strip's last chunk: the first chunk of the strip it will most likely take next).
///
/// # Safety
/// AVX-512 is present; `x` is in bounds; `c` addresses m × n values of which the strips' columns
/// are this call's alone.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn strips_of(
    x: Rows,
    bias: Option<&[f32]>,
    act: Option<RowMap<f32>>,
    res: Option<&[f32]>,
    c: *mut f32,
    runs: &Runs,
    t: usize,
) {
    // the chunk of b's strip, copied by the first register block for the others: rows of a
    // wide matrix lie a multiple of 64 bytes apart, so read in place they share few L1 sets
    // (left uninitialized: the first block writes all KC × 64 values the others then read)
    let mut packed = Packed([const { std::mem::MaybeUninit::uninit() }; KC * STRIP]);
    let packed = packed.0.as_mut_ptr() as *mut f32;
    let blocks = x.m.div_ceil(ROWS);
    let per = x.k.div_ceil(KC);
    // the strip whose first chunk the chunk before was fetching (none before the first)
    let mut fetched = None;
    while let Some((s, stolen)) = runs.next(t) {
        for j in 0..per {
            let ch = chunk(x, s, j);
            let masks = strip_masks(ch.cols);
            let last = j + 1 == per;
            // nothing was fetched ahead of a strip's first chunk it did not guess: the first
            // block asks for its own rows a few steps ahead
            let unfetched = j == 0 && fetched != Some(s);
            let next = if last {
                let guess = runs.guess(t, s, stolen);
                fetched = guess;
                guess.map(|g| chunk(x, g, 0))
            } else {
                Some(chunk(x, s, j + 1))
            };
            for g in 0..blocks {
                let i = g * ROWS;
                let rows = ROWS.min(x.m - i);
                let first_block = g == 0;
                // this block's share of the next chunk's rows, and its cache lines per row
                let fetch = next.map_or((std::ptr::null(), 0, 0), |nx| {
                    let (lo, hi) = (g * nx.kc / blocks, (g + 1) * nx.kc / blocks);
                    let lines = (nx.cols * x.b.size()).div_ceil(64);
                    (x.b_at(nx.k0 + lo, nx.c0), hi - lo, lines)
                });
                // f32 strips are read where they lie by every block; otherwise the first block
                // copies the chunk (f16 strips: widened) for the others, if there are others
                let src = match (x.b, first_block) {
                    (B::Strips(_), _) => Src::B,
                    (B::Rows(_), true) if blocks == 1 => Src::B,
                    (B::Rows(_), true) => Src::CopyB,
                    (B::StripsF16(_), true) if blocks == 1 => Src::WidenOnly,
                    (B::StripsF16(_), true) => Src::Widen,
                    (_, false) => Src::Copy,
                };
                let blk = Block {
                    a: x.a.as_ptr().add(i * x.lda + ch.k0),
                    lda: x.lda,
                    b: match src {
                        Src::Copy => packed as *const u8,
                        _ => x.b_at(ch.k0, ch.c0),
                    },
                    ldb: match src {
                        Src::Copy => STRIP * 4,
                        _ => x.ldb * x.b.size(),
                    },
                    pack: packed,
                    // nothing was fetched ahead of the very first chunk: its first block asks for
                    // its own rows a few steps ahead
                    ahead: if unfetched && first_block { ch.kc } else { 0 },
                    fetch,
                    b_ld: x.ldb * x.b.size(),
                    kc: ch.kc,
                    c: c.add(i * x.n + ch.c0),
                    ldc: x.n,
                    masks,
                    first: ch.k0 == 0,
                    bias: if last {
                        bias.map(|b| &b[ch.c0..ch.c0 + ch.cols])
                    } else {
                        None
                    },
                };
                run_block(rows, src, blk);
                if last && (act.is_some() || res.is_some()) {
                    for r in i..i + rows {
                        let at = r * x.n + ch.c0;
                        let row = std::slice::from_raw_parts_mut(c.add(at), ch.cols);
                        if let Some(act) = act {
                            act(row);
                        }
                        if let Some(res) = res {
                            for (o, &v) in row.iter_mut().zip(&res[at..at + ch.cols]) {
                                *o += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The lane masks of a strip's four vectors for its first `cols` columns (all set for a full
/// strip).
#[cfg(target_arch = "x86_64")]
pub(super) fn strip_masks(cols: usize) -> [std::arch::x86_64::__mmask16; 4] {
    [0, 1, 2, 3].map(|v| ((1u32 << cols.saturating_sub(16 * v).min(16)) - 1) as u16)
}

/// A 64-byte aligned chunk of a strip.
#[cfg(target_arch = "x86_64")]
#[repr(align(64))]
struct Packed([std::mem::MaybeUninit<f32>; KC * STRIP]);

/// One register block: R rows of a × a chunk of kc rows of b's strip.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Block<'a> {
    a: *const f32,
    lda: usize,
    /// the chunk's first row: in b (a row-major b's first block, which copies it to `pack`, or
    /// any block over strips; f16 strips' first block, which widens it into `pack`) or in
    /// `pack`; rows `ldb` bytes apart
    b: *const u8,
    ldb: usize,
    pack: *mut f32,
    /// rows of the chunk to prefetch [`AHEAD`] steps ahead (the first chunk's first block)
    ahead: usize,
    /// rows of b to fetch into L2 (first row, rows, cache lines per row), rows `b_ld` bytes
    /// apart
    fetch: (*const u8, usize, usize),
    b_ld: usize,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    masks: [std::arch::x86_64::__mmask16; 4],
    /// start from zero (else add to what c holds)
    first: bool,
    /// add on the way out (the last chunk)
    bias: Option<&'a [f32]>,
}

/// Where a register block reads its chunk of b.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Src {
    /// from b, copying it to `pack` for the other blocks (a row-major b's first block)
    CopyB,
    /// from the first block's copy in `pack`
    Copy,
    /// from b where it lies: a strip's contiguous rows, or a row-major b read by its only
    /// block
    B,
    /// from f16 strips, widening them to `pack` for the other blocks (their first block)
    Widen,
    /// from f16 strips, widened in registers only: the chunk's only block (up to [`ROWS`]
    /// rows, decoding), where a copy in `pack` would never be read. SmolLM2 f16 decode: the
    /// copy's stores, 256 bytes per weight row into a 32 KiB pack, held it at 19 GB/s of
    /// weights where f32 and bf16 stream 27–29 (BENCHMARKS.md, "Fourth session on the Zen 4")
    WidenOnly,
}

/// [`block`] for `rows` (1 to [`ROWS`]) rows of a, reading the chunk from `src`.
///
/// # Safety
/// As [`block`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn run_block(rows: usize, src: Src, blk: Block) {
    macro_rules! rows {
        ($read_b:literal, $copy:literal, $f16:literal) => {
            match rows {
                6 => block::<6, $read_b, $copy, $f16>(blk),
                5 => block::<5, $read_b, $copy, $f16>(blk),
                4 => block::<4, $read_b, $copy, $f16>(blk),
                3 => block::<3, $read_b, $copy, $f16>(blk),
                2 => block::<2, $read_b, $copy, $f16>(blk),
                _ => block::<1, $read_b, $copy, $f16>(blk),
            }
        };
    }
    match src {
        Src::CopyB => rows!(true, true, false),
        Src::Copy => rows!(false, false, false),
        Src::B => rows!(true, false, false),
        Src::Widen => rows!(true, true, true),
        Src::WidenOnly => rows!(true, false, true),
    }
}

/// With `F16` b holds f16 values (read from b, widened).
///
/// # Safety
/// As [`strips_of`]: `a` addresses R rows of kc, `b` kc rows of the strip's masked columns,
/// `c` R rows of them, `fetch` rows inside b.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn block<const R: usize, const READ_B: bool, const COPY: bool, const F16: bool>(p: Block) {
    use std::arch::x86_64::*;
    let m = p.masks;
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    if !p.first {
        for (r, acc) in acc.iter_mut().enumerate() {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_maskz_loadu_ps(m[v], p.c.add(r * p.ldc + 16 * v));
            }
        }
    }
    let (fetch, fetch_rows, lines) = p.fetch;
    for kk in 0..p.kc {
        let row = p.b.add(kk * p.ldb);
        if READ_B && kk + AHEAD < p.ahead {
            let ahead = row.add(AHEAD * p.ldb) as *const i8;
            for v in 0..if F16 { 2 } else { 4 } {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * v));
            }
        }
        if kk < fetch_rows {
            let f = fetch.add(kk * p.b_ld) as *const i8;
            for v in 0..lines {
                _mm_prefetch::<_MM_HINT_T1>(f.wrapping_add(64 * v));
            }
        }
        let bv = if F16 {
            let row = row as *const i16;
            [0, 1, 2, 3].map(|v| _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m[v], row.add(16 * v))))
        } else if READ_B {
            let row = row as *const f32;
            [0, 1, 2, 3].map(|v| _mm512_maskz_loadu_ps(m[v], row.add(16 * v)))
        } else {
            let row = row as *const f32;
            [0, 1, 2, 3].map(|v| _mm512_load_ps(row.add(16 * v)))
        };
        if COPY {
            for (v, &bv) in bv.iter().enumerate() {
                _mm512_store_ps(p.pack.add(kk * STRIP + 16 * v), bv);
            }
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*p.a.add(r * p.lda + kk));
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm512_fmadd_ps(x, bv, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, &acc) in acc.iter().enumerate() {
            let out = match p.bias {
                Some(b) => _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m[v], b.as_ptr().add(16 * v))),
                None => acc,
            };
            _mm512_mask_storeu_ps(p.c.add(r * p.ldc + 16 * v), m[v], out);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Every register block size, column tails, several chunks of k, strided operands, with
    /// and without bias, b in place and as f32 and f16 strips, against an f64 product.
    #[test]
    fn matches_the_f64_product() {
        if !applies(1, 1, 1) {
            eprintln!("skipped: matmul_rows needs AVX-512, which this CPU or PLUMB_CPU_SIMD lacks");
            return;
        }
        let val = |i: usize, s: usize| ((i * s) % 1001) as f32 / 1001.0 - 0.5;
        let mut strip_cases = 0;
        for (m, k, n, pad) in [
            (1, 1, 1, 0),
            (5, 7, 130, 3),
            (6, 300, 64, 0),
            (13, 384, 200, 1),
            (96, 129, 17, 0),
            (7, 300, 192, 2),
            (97, 130, 128, 0),
            (200, 64, 64, 1),
        ] {
            let (lda, ldb) = (k + pad, n + 2 * pad);
            let a: Vec<f32> = (0..m * lda).map(|i| val(i, 7919)).collect();
            let b: Vec<f32> = (0..k * ldb).map(|i| val(i, 104729)).collect();
            // b rounded to f16: what the f16 strips hold
            let b16: Vec<half::f16> = b.iter().map(|&v| half::f16::from_f32(v)).collect();
            let b16_f32: Vec<f32> = b16.iter().map(|v| v.to_f32()).collect();
            let bias: Vec<f32> = (0..n).map(|i| val(i, 31)).collect();
            let x = Rows {
                a: &a,
                lda,
                b: B::Rows(&b),
                ldb,
                m,
                k,
                n,
            };
            // the same weight packed as strips, where its columns are whole strips
            let dense: Vec<f32> = (0..k * n).map(|i| b[i / n * ldb + i % n]).collect();
            let dense16: Vec<half::f16> = (0..k * n).map(|i| b16[i / n * ldb + i % n]).collect();
            let packed = PackedStrips::pack(&dense, k, n);
            let packed16 = PackedStrips::pack(&dense16, k, n);
            assert_eq!(packed.is_some(), n % STRIP == 0, "{k}x{n} packs as strips");
            assert_eq!(
                packed16.is_some(),
                n % STRIP == 0,
                "{k}x{n} packs as f16 strips"
            );
            if let (Some(p), Some(p16)) = (&packed, &packed16) {
                assert_eq!(p.unpack(), dense, "strips of {k}x{n} read back");
                assert_eq!(p16.unpack(), dense16, "f16 strips of {k}x{n} read back");
            }
            let xs = packed.as_ref().map(|p| Rows {
                b: B::Strips(p.data()),
                ldb: STRIP,
                ..x
            });
            let xh = packed16.as_ref().map(|p| Rows {
                b: B::StripsF16(p.data()),
                ldb: STRIP,
                ..x
            });
            // in place (up to MAX_ROWS rows) with and without bias through the team, and with
            // bias as one task that took its own strips and then every other run's from the
            // back (`stolen`); the f32 and the f16 strips the same three ways. Each run with
            // the values of b it multiplies.
            let mut runs = vec![];
            for (with_bias, stolen) in [(false, false), (true, false), (true, true)] {
                if m <= MAX_ROWS {
                    runs.push((x, &b, with_bias, stolen));
                }
                for (xs, bref) in [(xs, &b), (xh, &b16_f32)] {
                    if let Some(xs) = xs.filter(|_| !stolen || m <= MAX_ROWS) {
                        runs.push((xs, bref, with_bias, stolen));
                        strip_cases += 1;
                    }
                }
            }
            for (x, b, with_bias, stolen) in runs {
                let add = with_bias.then_some(&bias[..]);
                let c = if stolen {
                    let mut c = vec![f32::NAN; m * n];
                    let runs = Runs::new(n.div_ceil(STRIP), 3);
                    // SAFETY: AVX-512 (checked above); x is in bounds; c holds m × n values
                    unsafe { strips_of(x, add, None, None, c.as_mut_ptr(), &runs, 0) };
                    assert_eq!(runs.next(1), None, "every strip was taken");
                    c
                } else if x.b.strips() && with_bias {
                    // 7 threads: more than one group of rows with its strips split between
                    // tasks where m > MAX_ROWS
                    crate::par::with_threads(7, || matmul_rows(x, add, None, None))
                        .expect("applies")
                } else {
                    matmul_rows(x, add, None, None).expect("applies")
                };
                let strips = match x.b {
                    B::Rows(_) => "none",
                    B::Strips(_) => "f32",
                    B::StripsF16(_) => "f16",
                };
                for (idx, &got) in c.iter().enumerate() {
                    let (i, j) = (idx / n, idx % n);
                    let mut want: f64 = (0..k)
                        .map(|p| a[i * lda + p] as f64 * b[p * ldb + j] as f64)
                        .sum();
                    if with_bias {
                        want += bias[j] as f64;
                    }
                    let tol = 1e-6 * (k as f64).sqrt() * (1.0 + want.abs());
                    assert!(
                        (got as f64 - want).abs() <= tol,
                        "{m}x{k}x{n} strips {strips} bias {with_bias} stolen {stolen}: c[{i},{j}] = {got}, want {want}"
                    );
                }
            }
        }
        assert_eq!(strip_cases, 20, "products read from strips");
    }

    #[test]
    fn declines_what_it_does_not_take() {
        let (a, b) = (vec![0f32; 4], vec![0f32; 4]);
        let x = Rows {
            a: &a,
            lda: 2,
            b: B::Rows(&b),
            ldb: 2,
            m: 2,
            k: 2,
            n: 2,
        };
        assert!(matmul_rows(
            Rows {
                m: MAX_ROWS + 1,
                ..x
            },
            None,
            None,
            None
        )
        .is_none());
        assert!(
            matmul_rows(Rows { ldb: 3, ..x }, None, None, None).is_none(),
            "b too short"
        );
        assert!(
            matmul_rows(x, Some(&[1.0]), None, None).is_none(),
            "bias of the wrong length"
        );
        let b = vec![0f32; 2 * STRIP];
        let xs = Rows {
            b: B::Strips(&b),
            ldb: STRIP,
            n: STRIP,
            ..x
        };
        assert!(
            matmul_rows(xs, None, None, None).is_some() || !applies(1, 1, 1),
            "strips of 2 x 64"
        );
        assert!(
            matmul_rows(Rows { n: 2, ..xs }, None, None, None).is_none(),
            "strips of a width that is not a multiple of 64"
        );
        assert!(
            matmul_rows(Rows { ldb: 65, ..xs }, None, None, None).is_none(),
            "strips at another row stride"
        );
        assert!(
            matmul_rows(Rows { k: 3, ..xs }, None, None, None).is_none(),
            "strips shorter than k x n"
        );
        let b16 = vec![half::f16::ZERO; 2 * STRIP];
        let xh = Rows {
            b: B::StripsF16(&b16),
            ..xs
        };
        assert!(
            matmul_rows(xh, None, None, None).is_some() || !applies(1, 1, 1),
            "f16 strips of 2 x 64"
        );
        assert!(
            matmul_rows(Rows { k: 3, ..xh }, None, None, None).is_none(),
            "f16 strips shorter than k x n"
        );
    }
}
