//! GGUF k-quant block formats (super-blocks of 256 values). Plumb's core has no k-quant storage
//! dtype, so tensors in these formats are dequantized when they are loaded.
//!
//! - Q4_K: 144 bytes = f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles
//! - Q5_K: 176 bytes = f16 d, f16 dmin, 12 bytes scales/mins, 32 bytes high bits, 128 bytes nibbles
//! - Q6_K: 210 bytes = 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 i8 scales, f16 d

use half::f16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KQuant {
    Q4K,
    Q5K,
    Q6K,
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
            KQuant::Q4K => "q4_k",
            KQuant::Q5K => "q5_k",
            KQuant::Q6K => "q6_k",
        }
    }
    pub fn block_len(self) -> usize {
        QK_K
    }
    pub fn block_bytes(self) -> usize {
        match self {
            KQuant::Q4K => 144,
            KQuant::Q5K => 176,
            KQuant::Q6K => 210,
        }
    }
    /// The GGML type id.
    pub fn gguf_type(self) -> u32 {
        match self {
            KQuant::Q4K => 12,
            KQuant::Q5K => 13,
            KQuant::Q6K => 14,
        }
    }
    pub fn from_gguf_type(id: u32) -> Option<KQuant> {
        match id {
            12 => Some(KQuant::Q4K),
            13 => Some(KQuant::Q5K),
            14 => Some(KQuant::Q6K),
            _ => None,
        }
    }

    /// Dequantize `numel` values (a multiple of 256) from `bytes`.
    pub fn dequantize(self, bytes: &[u8], numel: usize) -> Result<Vec<f32>, String> {
        let nb = self.block_bytes();
        if !numel.is_multiple_of(QK_K) || bytes.len() != numel / QK_K * nb {
            return Err(format!(
                "{} needs whole blocks of {QK_K}: {numel} values need {} bytes, got {}",
                self.name(),
                numel / QK_K * nb,
                bytes.len()
            ));
        }
        let mut out = vec![0f32; numel];
        for (blk, y) in bytes.chunks_exact(nb).zip(out.chunks_exact_mut(QK_K)) {
            match self {
                KQuant::Q4K => q4k_block(blk, y),
                KQuant::Q5K => q5k_block(blk, y),
                KQuant::Q6K => q6k_block(blk, y),
            }
        }
        Ok(out)
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
