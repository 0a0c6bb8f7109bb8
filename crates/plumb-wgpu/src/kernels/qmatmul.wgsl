// Quantized matmul y [rows, N] = x [rows, K] * w^T, w [N, K] in GGUF blocks of 32 ({{OP}}),
// read packed (never dequantized to memory). 32 weight rows per workgroup, 8 invocations per
// weight row splitting its blocks; the activation row is staged in workgroup memory 1024
// elements at a time; f32 accumulation. x is contiguous from offset p[3].
// p[0] N, p[1] K, p[3] x offset. Workgroup z = activation row.
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> wq: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<W_{{OT}}>;

var<workgroup> xs: array<f32, 1024>;
var<workgroup> red: array<f32, 256>;

fn byte_at(i: u32) -> u32 { return (wq[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
fn half_at(i: u32) -> f32 { return unpack2x16float(byte_at(i) | (byte_at(i + 1u) << 8u)).x; }
fn xv(i: u32) -> f32 { return xs[i]; }

const BB_q8_0: u32 = 34u;
const BB_q4_0: u32 = 18u;
const BB_q4_1: u32 = 20u;

// q8_0: f16 d, 32 x i8
fn dot_q8_0(bo: u32, xb: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < 32u; j = j + 1u) {
        let q = i32(byte_at(bo + 2u + j));
        s = s + f32(select(q, q - 256, q > 127)) * xv(xb + j);
    }
    return half_at(bo) * s;
}
// q4_0: f16 d, 16 bytes: element j in the low nibble of byte j, j + 16 in the high nibble
fn dot_q4_0(bo: u32, xb: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let q = byte_at(bo + 2u + j);
        s = s + (f32(q & 15u) - 8.0) * xv(xb + j) + (f32(q >> 4u) - 8.0) * xv(xb + j + 16u);
    }
    return half_at(bo) * s;
}
// q4_1: f16 d, f16 m, 16 bytes as q4_0; value = q * d + m. Blocks are 20 bytes: word aligned.
fn dot_q4_1(bo: u32, xb: u32) -> f32 {
    let wi = bo / 4u;
    let dm = unpack2x16float(wq[wi]);
    var s = 0.0;
    var sx = 0.0;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let q = wq[wi + 1u + k];
        for (var b = 0u; b < 4u; b = b + 1u) {
            let v = (q >> (8u * b)) & 0xffu;
            let j = k * 4u + b;
            let x0 = xv(xb + j);
            let x1 = xv(xb + j + 16u);
            s = s + f32(v & 15u) * x0 + f32(v >> 4u) * x1;
            sx = sx + x0 + x1;
        }
    }
    return dm.x * s + dm.y * sx;
}

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let n = p[0];
    let kdim = p[1];
    let g = wg.x + wg.y * nwg.x;
    if (g * 32u >= n) { return; }
    let row = wg.z;
    let nb = kdim / 32u;
    let col = g * 32u + t / 8u;
    let lane = t % 8u;
    var s = 0.0;
    for (var c0 = 0u; c0 < kdim; c0 = c0 + 1024u) {
        for (var i = t; i < 1024u; i = i + 256u) {
            var v = 0.0;
            if (c0 + i < kdim) {
                let e = p[3] + row * kdim + c0 + i;
                v = f32(dec_{{DT}}(x[e / P_{{DT}}], e % P_{{DT}}));
            }
            xs[i] = v;
        }
        workgroupBarrier();
        let b0 = c0 / 32u;
        let bend = min(nb, b0 + 32u);
        if (col < n) {
            for (var blk = b0 + lane; blk < bend; blk = blk + 8u) {
                s = s + dot_{{OP}}((col * nb + blk) * BB_{{OP}}, (blk - b0) * 32u);
            }
        }
        workgroupBarrier();
    }
    red[t] = s;
    workgroupBarrier();
    for (var h = 4u; h > 0u; h = h >> 1u) {
        if (lane < h) { red[t] = red[t] + red[t + h]; }
        workgroupBarrier();
    }
    if (t < 32u / P_{{OT}}) {
        let c = g * 32u + t * P_{{OT}};
        if (c < n) {
            var word = W_{{OT}}();
            for (var l = 0u; l < P_{{OT}}; l = l + 1u) {
                if (c + l < n) {
                    word = enc_{{OT}}(word, l, C_{{OT}}(red[(t * P_{{OT}} + l) * 8u]));
                }
            }
            y[(row * n + c) / P_{{OT}}] = word;
        }
    }
}
