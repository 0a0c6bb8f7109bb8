// Dequantize GGUF blocks ({{OP}}) to a float dtype (OT), one invocation per output word.
// p[4] number of elements
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<W_{{OT}}>;

fn byte_at(i: u32) -> u32 { return (wq[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
fn half_at(i: u32) -> f32 { return unpack2x16float(byte_at(i) | (byte_at(i + 1u) << 8u)).x; }

fn deq_q8_0(e: u32) -> f32 {
    let bo = (e / 32u) * 34u;
    let q = i32(byte_at(bo + 2u + e % 32u));
    return half_at(bo) * f32(select(q, q - 256, q > 127));
}
fn deq_q4_0(e: u32) -> f32 {
    let bo = (e / 32u) * 18u;
    let j = e % 32u;
    let b = byte_at(bo + 2u + j % 16u);
    let q = select(b >> 4u, b & 15u, j < 16u);
    return half_at(bo) * (f32(q) - 8.0);
}
fn deq_q4_1(e: u32) -> f32 {
    let bo = (e / 32u) * 20u;
    let j = e % 32u;
    let b = byte_at(bo + 4u + j % 16u);
    let q = select(b >> 4u, b & 15u, j < 16u);
    return half_at(bo) * f32(q) + half_at(bo + 2u);
}

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    let n = p[4];
    if (w * P_{{OT}} >= n) { return; }
    var word = W_{{OT}}();
    for (var l = 0u; l < P_{{OT}}; l = l + 1u) {
        let e = w * P_{{OT}} + l;
        if (e < n) {
            word = enc_{{OT}}(word, l, C_{{OT}}(deq_{{OP}}(e)));
        }
    }
    y[w] = word;
}
