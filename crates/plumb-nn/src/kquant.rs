//! GGUF block formats that Plumb's core has no storage dtype for: the k-quants (super-blocks of
//! 256 values) and the 5-bit blocks of 32 that llama.cpp's quantizer falls back to where a row
//! is not a whole number of 256-value super-blocks (SmolLM2's 576, Qwen2.5-0.5B's 896: a
//! `Q4_K_M` file of SmolLM2-135M holds 166 Q5_0 matrices, 16 Q4_K and 14 Q6_K).
//!
//! - Q2_K: 84 bytes = 16 bytes of 4-bit scales/mins, 64 bytes of 2-bit values, f16 d, f16 dmin
//! - Q3_K: 110 bytes = 32 bytes of high bits, 64 bytes of 2-bit values, 12 bytes of 6-bit
//!   scales, f16 d
//! - Q4_K: 144 bytes = f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles
//! - Q5_K: 176 bytes = f16 d, f16 dmin, 12 bytes scales/mins, 32 bytes high bits, 128 bytes nibbles
//! - Q6_K: 210 bytes = 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 i8 scales, f16 d
//! - Q5_0: 22 bytes = f16 d, 4 bytes of fifth bits, 16 bytes of nibbles; x = d·(q − 16)
//! - Q5_1: 24 bytes = f16 d, f16 m, 4 bytes of fifth bits, 16 bytes of nibbles; x = d·q + m
//! - IQ4_NL: 18 bytes = f16 d, 16 bytes of 4-bit indices into 16 non-linear levels; x = d·level
//! - IQ4_XS: 136 bytes per 256 values = f16 d, 6-bit scales for 32-value sub-blocks, indices as
//!   IQ4_NL
//!
//! Weight matrices in these formats are requantized when they load into a block dtype that
//! Plumb's quantized matmul runs ([`KQuant::requantized`]): Q4_K into q4_1 (each 32-value
//! sub-block is a q4_1 block: exact but for rounding its scale and offset to f16), Q5_0 and
//! IQ4_NL into q8_0 (exact: their values are small integers times the block scale), the others
//! into q8_0 (each value within half an 8-bit step of its block's largest).
//! Everything else, and every tensor where the device's policy does not keep quantized weights,
//! is dequantized to floats.

use half::f16;
use plumb_core::DType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KQuant {
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q50,
    Q51,
    Iq4Nl,
    Iq4Xs,
}

const QK_K: usize = 256;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The j-th (scale, min) pair of the 12-byte packed 6-bit table of Q4_K/Q5_K.
fn scale_min(j: usize, q: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
    } else {
        (
            ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4)) as f32,
            ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as f32,
        )
    }
}

impl KQuant {
    pub fn name(self) -> &'static str {
        match self {
            KQuant::Q2K => "q2_k",
            KQuant::Q3K => "q3_k",
            KQuant::Q4K => "q4_k",
            KQuant::Q5K => "q5_k",
            KQuant::Q6K => "q6_k",
            KQuant::Q50 => "q5_0",
            KQuant::Q51 => "q5_1",
            KQuant::Iq4Nl => "iq4_nl",
            KQuant::Iq4Xs => "iq4_xs",
        }
    }
    pub fn block_len(self) -> usize {
        match self {
            KQuant::Q2K | KQuant::Q3K | KQuant::Q4K | KQuant::Q5K | KQuant::Q6K => QK_K,
            KQuant::Iq4Xs => QK_K,
            KQuant::Q50 | KQuant::Q51 | KQuant::Iq4Nl => 32,
        }
    }
    pub fn block_bytes(self) -> usize {
        match self {
            KQuant::Q2K => 84,
            KQuant::Q3K => 110,
            KQuant::Q4K => 144,
            KQuant::Q5K => 176,
            KQuant::Q6K => 210,
            KQuant::Q50 => 22,
            KQuant::Q51 => 24,
            KQuant::Iq4Nl => 18,
            KQuant::Iq4Xs => 136,
        }
    }
    /// The GGML type id.
    pub fn gguf_type(self) -> u32 {
        match self {
            KQuant::Q2K => 10,
            KQuant::Q3K => 11,
            KQuant::Q4K => 12,
            KQuant::Q5K => 13,
            KQuant::Q6K => 14,
            KQuant::Q50 => 6,
            KQuant::Q51 => 7,
            KQuant::Iq4Nl => 20,
            KQuant::Iq4Xs => 23,
        }
    }
    pub fn from_gguf_type(id: u32) -> Option<KQuant> {
        match id {
            10 => Some(KQuant::Q2K),
            11 => Some(KQuant::Q3K),
            12 => Some(KQuant::Q4K),
            13 => Some(KQuant::Q5K),
            14 => Some(KQuant::Q6K),
            6 => Some(KQuant::Q50),
            7 => Some(KQuant::Q51),
            20 => Some(KQuant::Iq4Nl),
            23 => Some(KQuant::Iq4Xs),
            _ => None,
        }
    }

    /// The block dtype a weight matrix in this format is requantized into when it loads
    /// quantized (see the module docs).
    pub fn requantized(self) -> DType {
        match self {
            KQuant::Q4K => DType::Q4_1,
            _ => DType::Q8_0,
        }
    }

    /// How close [`KQuant::requantize`] is to the stored values, for the load report.
    pub fn requantize_error(self) -> &'static str {
        match self {
            KQuant::Q4K => "exact but for f16 rounding of the block scales",
            KQuant::Q50 | KQuant::Iq4Nl => "exact",
            _ => "within half an 8-bit step per block",
        }
    }

    fn check(self, bytes: &[u8], numel: usize) -> Result<(), String> {
        let (n, nb) = (self.block_len(), self.block_bytes());
        if !numel.is_multiple_of(n) || bytes.len() != numel / n * nb {
            return Err(format!(
                "{} needs whole blocks of {n}: {numel} values need {} bytes, got {}",
                self.name(),
                numel / n * nb,
                bytes.len()
            ));
        }
        Ok(())
    }

    /// Dequantize `numel` values (a whole number of blocks) from `bytes`.
    pub fn dequantize(self, bytes: &[u8], numel: usize) -> Result<Vec<f32>, String> {
        self.check(bytes, numel)?;
        let (n, nb) = (self.block_len(), self.block_bytes());
        let mut out = vec![0f32; numel];
        for (blk, y) in bytes.chunks_exact(nb).zip(out.chunks_exact_mut(n)) {
            match self {
                KQuant::Q2K => q2k_block(blk, y),
                KQuant::Q3K => q3k_block(blk, y),
                KQuant::Q4K => q4k_block(blk, y),
                KQuant::Q5K => q5k_block(blk, y),
                KQuant::Q6K => q6k_block(blk, y),
                KQuant::Q50 => q5_block(blk, y, false),
                KQuant::Q51 => q5_block(blk, y, true),
                KQuant::Iq4Nl => iq4_values(&blk[2..18], f16_at(blk, 0), y),
                KQuant::Iq4Xs => iq4xs_block(blk, y),
            }
        }
        Ok(out)
    }

    /// `numel` values from `bytes` as blocks of [`KQuant::requantized`] (see the module docs).
    pub fn requantize(self, bytes: &[u8], numel: usize) -> Result<Vec<u8>, String> {
        self.check(bytes, numel)?;
        match self {
            KQuant::Q4K => Ok(convert_blocks(bytes, numel, 144, q4k_to_q4_1)),
            KQuant::Q50 => Ok(convert_blocks(bytes, numel, 22, q5_0_to_q8_0)),
            KQuant::Iq4Nl => Ok(convert_blocks(bytes, numel, 18, iq4nl_to_q8_0)),
            _ => {
                let vals = self.dequantize(bytes, numel)?;
                plumb_core::quant::quantize(DType::Q8_0, &vals).map_err(|e| e.to_string())
            }
        }
    }
}

/// `numel` values of stored blocks of `block_bytes` converted block by block by `f` (which
/// appends one or more q4_1 / q8_0 blocks) into one buffer, sized once for the target dtype.
fn convert_blocks(
    bytes: &[u8],
    numel: usize,
    block_bytes: usize,
    f: fn(&[u8], &mut Vec<u8>),
) -> Vec<u8> {
    // q4_1 and q8_0 blocks hold 32 values in at most 34 bytes
    let mut out = Vec::with_capacity(numel / 32 * 34);
    for b in bytes.chunks_exact(block_bytes) {
        f(b, &mut out);
    }
    out
}

/// The 8 sub-blocks of one Q4_K super-block as 8 q4_1 blocks (160 bytes): sub-block j holds
/// `d·sc_j·q − dmin·m_j` for nibbles q, which is q4_1's `d'·q + m'` with d' = d·sc_j and
/// m' = −dmin·m_j.
fn q4k_to_q4_1(b: &[u8], out: &mut Vec<u8>) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..8 {
        let (sc, m) = scale_min(j, scales);
        out.extend_from_slice(&f16::from_f32(d * sc).to_le_bytes());
        out.extend_from_slice(&f16::from_f32(-(dmin * m)).to_le_bytes());
        // sub-block 2c is the low nibbles of bytes 32c..32c+32, sub-block 2c+1 the high ones
        let q = |l: usize| {
            let byte = qs[32 * (j / 2) + l];
            if j % 2 == 0 {
                byte & 0x0f
            } else {
                byte >> 4
            }
        };
        // q4_1 keeps value l in the low nibble of byte l and value l + 16 in its high nibble
        out.extend((0..16).map(|l| q(l) | (q(l + 16) << 4)));
    }
}

/// One Q5_0 block as one q8_0 block: the same scale, each 5-bit value minus 16 as an i8.
fn q5_0_to_q8_0(b: &[u8], out: &mut Vec<u8>) {
    let mut y = [0i8; 32];
    q5_values(b, 2, |j, q| y[j] = q as i8 - 16);
    out.extend_from_slice(&b[0..2]);
    out.extend(y.iter().map(|&v| v as u8));
}

/// The 32 5-bit values (0..32) of a Q5_0 / Q5_1 block whose fifth bits start at byte `at`:
/// value j < 16 is the low nibble of nibble byte j, value j + 16 its high nibble, and bit j of
/// the little-endian u32 is value j's fifth bit.
fn q5_values(b: &[u8], at: usize, mut f: impl FnMut(usize, u8)) {
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let qs = &b[at + 4..at + 20];
    for (j, &q) in qs.iter().enumerate() {
        let h0 = ((qh >> j) & 1) as u8;
        let h1 = ((qh >> (j + 16)) & 1) as u8;
        f(j, (q & 0x0f) | (h0 << 4));
        f(j + 16, (q >> 4) | (h1 << 4));
    }
}

/// Q5_0: `d·(q − 16)`; Q5_1 (`with_min`): `d·q + m`.
fn q5_block(b: &[u8], y: &mut [f32], with_min: bool) {
    let d = f16_at(b, 0);
    if with_min {
        let m = f16_at(b, 2);
        q5_values(b, 4, |j, q| y[j] = d * q as f32 + m);
    } else {
        q5_values(b, 2, |j, q| y[j] = d * (q as i32 - 16) as f32);
    }
}

/// Q2_K: 16 bytes of 4-bit (scale, min) pairs for 16-value sub-blocks, 64 bytes of 2-bit
/// values, f16 d and dmin: `d·sc·q − dmin·m`. Each 32-byte half of `qs` holds 128 values, four
/// 2-bit planes of 32.
fn q2k_block(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    let mut out = y.chunks_exact_mut(16);
    let mut sc = scales.iter();
    for q in qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for half in [&q[..16], &q[16..]] {
                let (Some(&s), Some(y)) = (sc.next(), out.next()) else {
                    return;
                };
                let (dl, ml) = (d * (s & 0x0f) as f32, dmin * (s >> 4) as f32);
                for (y, &q) in y.iter_mut().zip(half) {
                    *y = dl * ((q >> shift) & 3) as f32 - ml;
                }
            }
        }
    }
}

/// Q3_K: 32 bytes of high bits, 64 bytes of low 2-bit values, 12 bytes of 6-bit scales for
/// 16-value sub-blocks, f16 d: `d·(sc − 32)·(q − 4)` with the 3-bit q's high bit from
/// `hmask` (a set bit means no −4).
fn q3k_block(b: &[u8], y: &mut [f32]) {
    let (hmask, qs, packed) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    // the 16 6-bit scales: low 4 bits from bytes 0..8 (two per byte), high 2 bits from 8..12
    let scale = |i: usize| -> i32 {
        let low = if i < 8 {
            packed[i] & 0x0f
        } else {
            packed[i - 8] >> 4
        };
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        (low | (high << 4)) as i32 - 32
    };
    let mut out = y.chunks_exact_mut(16);
    let mut is = 0;
    let mut bit = 0;
    for q in qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for (at, half) in [(0, &q[..16]), (16, &q[16..])] {
                let Some(y) = out.next() else { return };
                let dl = d * scale(is) as f32;
                is += 1;
                for (l, (y, &q)) in y.iter_mut().zip(half).enumerate() {
                    let high = if hmask[at + l] & (1 << bit) != 0 {
                        0
                    } else {
                        4
                    };
                    *y = dl * (((q >> shift) & 3) as i32 - high) as f32;
                }
            }
            bit += 1;
        }
    }
}

/// The 16 levels of IQ4_NL and IQ4_XS (llama.cpp's `kvalues_iq4nl`), a non-linear 4-bit grid.
const IQ4_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// 32 values `d·level` from 16 bytes of 4-bit level indices (value j in byte j's low nibble,
/// value j + 16 in its high nibble).
fn iq4_values(qs: &[u8], d: f32, y: &mut [f32]) {
    for (j, &q) in qs.iter().enumerate() {
        y[j] = d * IQ4_LEVELS[(q & 0x0f) as usize] as f32;
        y[j + 16] = d * IQ4_LEVELS[(q >> 4) as usize] as f32;
    }
}

/// One IQ4_NL block as one q8_0 block: the same scale, each level as an i8 (exact).
fn iq4nl_to_q8_0(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&b[0..2]);
    let level = |q: u8| IQ4_LEVELS[q as usize] as u8;
    out.extend(b[2..18].iter().map(|&q| level(q & 0x0f)));
    out.extend(b[2..18].iter().map(|&q| level(q >> 4)));
}

/// IQ4_XS: f16 d, 2 bytes of high scale bits, 4 bytes of low scale nibbles, 128 bytes of level
/// indices; sub-block i (32 values) has the 6-bit scale `ls` and values `d·(ls − 32)·level`.
fn iq4xs_block(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let high = u16::from_le_bytes([b[2], b[3]]);
    let (low, qs) = (&b[4..8], &b[8..136]);
    for (i, (q, y)) in qs.chunks_exact(16).zip(y.chunks_exact_mut(32)).enumerate() {
        let ls = ((low[i / 2] >> (4 * (i % 2))) & 0x0f) | ((((high >> (2 * i)) & 3) as u8) << 4);
        iq4_values(q, d * (ls as i32 - 32) as f32, y);
    }
}

fn q4k_block(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for (chunk, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min(2 * chunk, scales);
        let (sc2, m2) = scale_min(2 * chunk + 1, scales);
        let (d1, m1, d2, m2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0x0f) as f32 - m1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

fn q5k_block(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for (chunk, (ql, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min(2 * chunk, scales);
        let (sc2, m2) = scale_min(2 * chunk + 1, scales);
        let (d1, m1, d2, m2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
        let u1 = 1u8 << (2 * chunk);
        let u2 = 2u8 << (2 * chunk);
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * ((ql[l] & 0x0f) + h1) as f32 - m1;
            y[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
    }
}

fn q6k_block(b: &[u8], y: &mut [f32]) {
    let ql_all = &b[0..128];
    let qh_all = &b[128..192];
    let sc_all = &b[192..208];
    let d = f16_at(b, 208);
    for half_i in 0..2 {
        let ql = &ql_all[64 * half_i..64 * half_i + 64];
        let qh = &qh_all[32 * half_i..32 * half_i + 32];
        let sc = &sc_all[8 * half_i..8 * half_i + 8];
        let y = &mut y[128 * half_i..128 * half_i + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KQuant;
    use half::f16;
    use plumb_core::DType;

    /// `blocks` blocks of `k` from a fixed pseudo-random byte stream, with every f16 field set
    /// to a small positive scale (random bytes there would be NaNs and huge values).
    fn random_blocks(k: KQuant, blocks: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut bytes: Vec<u8> = (0..blocks * k.block_bytes())
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let halves: &[usize] = match k {
            KQuant::Q4K | KQuant::Q5K | KQuant::Q51 => &[0, 2],
            KQuant::Q6K => &[208],
            KQuant::Q50 => &[0],
            KQuant::Q2K => &[80, 82],
            KQuant::Q3K => &[108],
            KQuant::Iq4Nl | KQuant::Iq4Xs => &[0],
        };
        for (i, b) in bytes.chunks_exact_mut(k.block_bytes()).enumerate() {
            for &at in halves {
                let v = f16::from_f32(0.01 + 0.003 * ((i + at) % 7) as f32);
                b[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        bytes
    }

    /// Requantized blocks decode to the stored values: Q5_0 exactly, Q4_K within f16 rounding of
    /// its sub-block scales and offsets, the others within half an 8-bit step (each 32-value
    /// block's largest magnitude / 127) plus that step's f16 rounding.
    #[test]
    fn requantized_blocks_decode_to_the_stored_values() {
        for k in [
            KQuant::Q4K,
            KQuant::Q5K,
            KQuant::Q6K,
            KQuant::Q50,
            KQuant::Q51,
            KQuant::Iq4Nl,
            KQuant::Iq4Xs,
        ] {
            let blocks = 3;
            let numel = blocks * k.block_len();
            let bytes = random_blocks(k, blocks);
            let want = k.dequantize(&bytes, numel).unwrap();
            let q = k.requantized();
            let re = k.requantize(&bytes, numel).unwrap();
            assert_eq!(re.len(), q.storage_bytes(numel), "{}", k.name());
            let got = plumb_core::quant::dequantize(q, &re, numel).unwrap();
            for (b, (w, g)) in want.chunks(32).zip(got.chunks(32)).enumerate() {
                let amax = w.iter().fold(0f32, |m, v| m.max(v.abs()));
                let bound = match k {
                    KQuant::Q50 | KQuant::Iq4Nl => 0.0,
                    // d·sc and dmin·m each rounded to f16 (relative 2⁻¹¹), times q ≤ 15
                    KQuant::Q4K => amax * 2f32.powi(-10) + 1e-6,
                    // half a step of amax/127, plus the step's f16 rounding times q ≤ 127
                    _ => amax / 254.0 + amax * 2f32.powi(-11) + 1e-6,
                };
                for (i, (w, g)) in w.iter().zip(g).enumerate() {
                    assert!(
                        (w - g).abs() <= bound,
                        "{} → {q}: block {b} value {i}: {g} for {w} (bound {bound})",
                        k.name()
                    );
                }
            }
            if k == KQuant::Q4K {
                assert_eq!(q, DType::Q4_1);
            }
        }
    }

    #[test]
    fn partial_blocks_are_errors() {
        for k in [KQuant::Q4K, KQuant::Q50, KQuant::Q51] {
            let bytes = random_blocks(k, 1);
            let e = k
                .requantize(&bytes[..bytes.len() - 1], k.block_len())
                .unwrap_err();
            assert!(e.contains(k.name()) && e.contains("whole blocks"), "{e}");
            assert!(k.dequantize(&bytes, k.block_len() + 1).is_err());
        }
    }
}
