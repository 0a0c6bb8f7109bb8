// Dtype codecs: how elements of each dtype live in storage words and how they are computed.
// The host picks the sections a kernel needs (one per `//! dtype NAME` header) and prepends them.
// Every section X defines:
//   alias W_X   storage word type of the binding (`array<W_X>`)
//   alias C_X   compute type of one element (halves compute in f32, u8/bool in i32)
//   const P_X   elements per storage word
//   const Z_X   bytes per element
//   const F_X   true when the dtype computes in f32 (casts use from_f32_X for it)
//   const K_X   kind: 0 float, 1 signed int, 2 u8, 3 bool, 4 raw bits
//   fn isnan_X(value) -> bool           NaN test on bits (fast-math compilers fold v != v)
//   fn from_f32_X(f32) -> C_X           (plain dtypes) f32 -> X with the cast rules:
//                                        truncate toward zero, saturate, NaN -> 0, bool != 0
//   alias V4_X, fn ld4_X(V4_X) -> vec4<f32>   (float dtypes) four consecutive elements
//   fn dec_X(word, lane) -> C_X          read element `lane` of a word
//   fn enc_X(word, lane, value) -> W_X   replace element `lane` of a word

//! dtype f32
alias W_f32 = u32;
alias C_f32 = f32;
const P_f32: u32 = 1u;
const Z_f32: u32 = 4u;
const F_f32: bool = true;
const K_f32: u32 = 0u;
fn isnan_f32(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn from_f32_f32(v: f32) -> f32 { return v; }
alias V4_f32 = vec4<f32>;
fn ld4_f32(w: vec4<f32>) -> vec4<f32> { return w; }
fn dec_f32(w: u32, lane: u32) -> f32 { return bitcast<f32>(w); }
fn enc_f32(w: u32, lane: u32, v: f32) -> u32 { return bitcast<u32>(v); }

//! dtype i32
alias W_i32 = u32;
alias C_i32 = i32;
const P_i32: u32 = 1u;
const Z_i32: u32 = 4u;
const F_i32: bool = false;
const K_i32: u32 = 1u;
fn isnan_i32(v: i32) -> bool { return false; }
fn from_f32_i32(v: f32) -> i32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { return 0; }
    if (v >= 2147483648.0) { return 2147483647; }
    if (v < -2147483648.0) { return -2147483647 - 1; }
    return i32(v);
}
fn dec_i32(w: u32, lane: u32) -> i32 { return bitcast<i32>(w); }
fn enc_i32(w: u32, lane: u32, v: i32) -> u32 { return bitcast<u32>(v); }

//! dtype u8
// four bytes per word, little-endian; arithmetic wraps modulo 256
alias W_u8 = u32;
alias C_u8 = i32;
const P_u8: u32 = 4u;
const Z_u8: u32 = 1u;
const F_u8: bool = false;
const K_u8: u32 = 2u;
fn isnan_u8(v: i32) -> bool { return false; }
fn from_f32_u8(v: f32) -> i32 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { return 0; }
    return i32(clamp(v, 0.0, 255.0));
}
fn dec_u8(w: u32, lane: u32) -> i32 { return i32((w >> (8u * lane)) & 0xffu); }
fn enc_u8(w: u32, lane: u32, v: i32) -> u32 {
    let sh = 8u * lane;
    return (w & ~(0xffu << sh)) | ((u32(v) & 0xffu) << sh);
}

//! dtype bool
// one byte per element (0 or 1), four per word
alias W_bool = u32;
alias C_bool = i32;
const P_bool: u32 = 4u;
const Z_bool: u32 = 1u;
const F_bool: bool = false;
const K_bool: u32 = 3u;
fn isnan_bool(v: i32) -> bool { return false; }
fn from_f32_bool(v: f32) -> i32 { return select(0, 1, v != 0.0); }
fn dec_bool(w: u32, lane: u32) -> i32 { return select(0, 1, ((w >> (8u * lane)) & 0xffu) != 0u); }
fn enc_bool(w: u32, lane: u32, v: i32) -> u32 {
    let sh = 8u * lane;
    return (w & ~(0xffu << sh)) | (select(0u, 1u, v != 0) << sh);
}

//! dtype bf16
// bf16 bits, two per word; widened to f32, stored with round-to-nearest-even
alias W_bf16 = u32;
alias C_bf16 = f32;
const P_bf16: u32 = 2u;
const Z_bf16: u32 = 2u;
const F_bf16: bool = true;
const K_bf16: u32 = 0u;
fn isnan_bf16(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn from_f32_bf16(v: f32) -> f32 { return v; }
alias V4_bf16 = vec2<u32>;
fn ld4_bf16(w: vec2<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
}
fn dec_bf16(w: u32, lane: u32) -> f32 { return bitcast<f32>(((w >> (16u * lane)) & 0xffffu) << 16u); }
fn bf16_bits(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return ((b >> 16u) | 0x40u) & 0xffffu; // quiet NaN
    }
    return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
fn enc_bf16(w: u32, lane: u32, v: f32) -> u32 {
    let sh = 16u * lane;
    return (w & ~(0xffffu << sh)) | (bf16_bits(v) << sh);
}

//! dtype f16
// native half precision (`enable f16;`, SHADER_F16): two halves per word, computed in f32,
// rounded by the hardware's f16 conversion
alias W_f16 = u32;
alias C_f16 = f32;
const P_f16: u32 = 2u;
const Z_f16: u32 = 2u;
const F_f16: bool = true;
const K_f16: u32 = 0u;
fn isnan_f16(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn from_f32_f16(v: f32) -> f32 { return v; }
alias V4_f16 = vec2<u32>;
fn ld4_f16(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn dec_f16(w: u32, lane: u32) -> f32 {
    let h = unpack2x16float(w);
    return select(h.x, h.y, lane == 1u);
}
// the hardware f32 -> f16 conversion rounds; the rounded value is exact for pack2x16float
fn enc_f16(w: u32, lane: u32, v: f32) -> u32 {
    let bits = pack2x16float(vec2<f32>(f32(f16(v)), 0.0)) & 0xffffu;
    let sh = 16u * lane;
    return (w & ~(0xffffu << sh)) | (bits << sh);
}

//! dtype f16packed
// f16 bits on a device without SHADER_F16 (used by casts only): unpack2x16float is exact,
// the store rounds to nearest-even in integer arithmetic
alias W_f16packed = u32;
alias C_f16packed = f32;
const P_f16packed: u32 = 2u;
const Z_f16packed: u32 = 2u;
const F_f16packed: bool = true;
const K_f16packed: u32 = 0u;
fn isnan_f16packed(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn from_f32_f16packed(v: f32) -> f32 { return v; }
fn dec_f16packed(w: u32, lane: u32) -> f32 {
    let h = unpack2x16float(w);
    return select(h.x, h.y, lane == 1u);
}
fn f16_bits(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if (a > 0x7f800000u) { return sign | 0x7e00u; }      // NaN
    if (a >= 0x477ff000u) { return sign | 0x7c00u; }     // rounds to infinity
    if (a >= 0x38800000u) {                              // normal half
        let r = a - 0x38000000u;
        return sign | ((r + 0xfffu + ((r >> 13u) & 1u)) >> 13u);
    }
    if (a <= 0x33000000u) { return sign; }               // at most 2^-25: rounds to zero
    let e = a >> 23u;                                    // subnormal half
    let m = (a & 0x7fffffu) | 0x800000u;
    let shift = 126u - e;
    let q = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    let up = rem > half || (rem == half && (q & 1u) == 1u);
    return sign | (q + select(0u, 1u, up));
}
fn enc_f16packed(w: u32, lane: u32, v: f32) -> u32 {
    let sh = 16u * lane;
    return (w & ~(0xffffu << sh)) | (f16_bits(v) << sh);
}

//! dtype i64
// needs SHADER_INT64
alias W_i64 = i64;
alias C_i64 = i64;
const P_i64: u32 = 1u;
const Z_i64: u32 = 8u;
const F_i64: bool = false;
const K_i64: u32 = 1u;
fn isnan_i64(v: i64) -> bool { return false; }
fn from_f32_i64(v: f32) -> i64 {
    if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { return 0li; }
    if (v >= 9223372036854775808.0) { return 9223372036854775807li; }
    if (v < -9223372036854775808.0) { return -9223372036854775807li - 1li; }
    return i64(v);
}
fn dec_i64(w: i64, lane: u32) -> i64 { return w; }
fn enc_i64(w: i64, lane: u32, v: i64) -> i64 { return v; }

//! dtype f64
// needs SHADER_F64
alias W_f64 = f64;
alias C_f64 = f64;
const P_f64: u32 = 1u;
const Z_f64: u32 = 8u;
const F_f64: bool = false;
const K_f64: u32 = 0u;
fn isnan_f64(v: f64) -> bool { return (bitcast<u32>(f32(v)) & 0x7fffffffu) > 0x7f800000u; }
fn from_f32_f64(v: f32) -> f64 { return f64(v); }
fn dec_f64(w: f64, lane: u32) -> f64 { return w; }
fn enc_f64(w: f64, lane: u32, v: f64) -> f64 { return v; }

//! dtype f64bits
// f64 on a device without SHADER_F64 (casts only): two words of IEEE bits, converted to and
// from f32 in integer arithmetic (round-to-nearest-even); computed in f32
alias W_f64bits = vec2<u32>;
alias C_f64bits = f32;
const P_f64bits: u32 = 1u;
const Z_f64bits: u32 = 8u;
const F_f64bits: bool = true;
const K_f64bits: u32 = 0u;
fn isnan_f64bits(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn from_f32_f64bits(v: f32) -> f32 { return v; }
fn dec_f64bits(w: vec2<u32>, lane: u32) -> f32 {
    let hi = w.y;
    let lo = w.x;
    let sign = hi & 0x80000000u;
    let e = (hi >> 20u) & 0x7ffu;
    let mhi = hi & 0xfffffu;
    if (e == 0x7ffu) {
        return bitcast<f32>(sign | select(0x7f800000u, 0x7fc00000u, (mhi | lo) != 0u));
    }
    let ee = i32(e) - 896;
    if (ee >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
    let m = (mhi << 3u) | (lo >> 29u);
    if (ee <= 0) {
        // f32 subnormal range (or zero): scale the 24-bit significand
        if (ee < -24 || e == 0u) { return bitcast<f32>(sign); }
        let f = ldexp(1.0 + f32(m) / 8388608.0, ee - 127);
        return select(f, -f, sign != 0u);
    }
    let rest = lo & 0x1fffffffu;
    var bits = sign | (u32(ee) << 23u) | m;
    if (rest > 0x10000000u || (rest == 0x10000000u && (m & 1u) == 1u)) {
        bits = bits + 1u;
    }
    return bitcast<f32>(bits);
}
fn enc_f64bits(w: vec2<u32>, lane: u32, v: f32) -> vec2<u32> {
    let b = bitcast<u32>(v);
    let sign = b & 0x80000000u;
    let e = (b >> 23u) & 0xffu;
    var m = b & 0x7fffffu;
    var e64: u32;
    if (e == 255u) {
        e64 = 0x7ffu;
    } else if (e == 0u) {
        if (m == 0u) { return vec2<u32>(0u, sign); }
        let s = countLeadingZeros(m) - 8u;
        m = (m << s) & 0x7fffffu;
        e64 = 897u - s;
    } else {
        e64 = e + 896u;
    }
    return vec2<u32>(m << 29u, sign | (e64 << 20u) | (m >> 3u));
}

//! dtype b8
// raw bytes (data movement of u8/bool)
alias W_b8 = u32;
alias C_b8 = u32;
const P_b8: u32 = 4u;
const Z_b8: u32 = 1u;
const F_b8: bool = false;
const K_b8: u32 = 4u;
fn isnan_b8(v: u32) -> bool { return false; }
fn dec_b8(w: u32, lane: u32) -> u32 { return (w >> (8u * lane)) & 0xffu; }
fn lo_b8(v: u32) -> u32 { return v; }
fn enc_b8(w: u32, lane: u32, v: u32) -> u32 {
    let sh = 8u * lane;
    return (w & ~(0xffu << sh)) | ((v & 0xffu) << sh);
}

//! dtype b16
// raw 16-bit elements (data movement of f16/bf16, no SHADER_F16 needed)
alias W_b16 = u32;
alias C_b16 = u32;
const P_b16: u32 = 2u;
const Z_b16: u32 = 2u;
const F_b16: bool = false;
const K_b16: u32 = 4u;
fn isnan_b16(v: u32) -> bool { return false; }
fn dec_b16(w: u32, lane: u32) -> u32 { return (w >> (16u * lane)) & 0xffffu; }
fn lo_b16(v: u32) -> u32 { return v; }
fn enc_b16(w: u32, lane: u32, v: u32) -> u32 {
    let sh = 16u * lane;
    return (w & ~(0xffffu << sh)) | ((v & 0xffffu) << sh);
}

//! dtype b32
alias W_b32 = u32;
alias C_b32 = u32;
const P_b32: u32 = 1u;
const Z_b32: u32 = 4u;
const F_b32: bool = false;
const K_b32: u32 = 4u;
fn isnan_b32(v: u32) -> bool { return false; }
fn dec_b32(w: u32, lane: u32) -> u32 { return w; }
fn lo_b32(v: u32) -> u32 { return v; }
fn enc_b32(w: u32, lane: u32, v: u32) -> u32 { return v; }

//! dtype b64
// raw 64-bit elements as two words (data movement of i64/f64, no SHADER_INT64/F64 needed)
alias W_b64 = vec2<u32>;
alias C_b64 = vec2<u32>;
const P_b64: u32 = 1u;
const Z_b64: u32 = 8u;
const F_b64: bool = false;
const K_b64: u32 = 4u;
fn isnan_b64(v: vec2<u32>) -> bool { return false; }
fn dec_b64(w: vec2<u32>, lane: u32) -> vec2<u32> { return w; }
// an id that does not fit in 32 bits reads as out of range
fn lo_b64(v: vec2<u32>) -> u32 { return select(0xffffffffu, v.x, v.y == 0u); }
fn enc_b64(w: vec2<u32>, lane: u32, v: vec2<u32>) -> vec2<u32> { return v; }
