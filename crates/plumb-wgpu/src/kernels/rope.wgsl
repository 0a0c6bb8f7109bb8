// Rotary embeddings on x [batch, heads, seq, d] (any strides) with cos/sin [seq, d/2] (inputs
// 1 and 2: offset and strides [seq, pair] stored in their layout blocks' first two strides).
// Rotate-half pairs (i, i + d/2); interleaved pairs (2i, 2i + 1). One invocation per word.
// p[0] interleaved
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> cs: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read> sn: array<W_{{DT}}>;
@group(0) @binding(4) var<storage, read_write> y: array<W_{{DT}}>;

fn load(e: u32) -> f32 {
    let i = at(e, 0u);
    return f32(dec_{{DT}}(x[i / P_{{DT}}], i % P_{{DT}}));
}
fn table(b: u32, t: u32, j: u32) -> u32 {
    let lb = 14u + 9u * b;
    return p[lb] + t * p[lb + 1u] + j * p[lb + 2u];
}

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    let n = p[4];
    if (w * P_{{DT}} >= n) { return; }
    let d = p[9];
    let seq = p[8];
    let half = d / 2u;
    var word = W_{{DT}}();
    for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
        let e = w * P_{{DT}} + l;
        if (e < n) {
            let i = e % d;
            let t = (e / d) % seq;
            var j: u32;
            var partner: u32;
            var first: bool;
            if (p[0] != 0u) {
                j = i / 2u;
                first = (i % 2u) == 0u;
                partner = select(e - 1u, e + 1u, first);
            } else {
                first = i < half;
                j = select(i - half, i, first);
                partner = select(e - half, e + half, first);
            }
            let ci = table(1u, t, j);
            let si = table(2u, t, j);
            let c = f32(dec_{{DT}}(cs[ci / P_{{DT}}], ci % P_{{DT}}));
            let s = f32(dec_{{DT}}(sn[si / P_{{DT}}], si % P_{{DT}}));
            let v = load(e);
            let u = load(partner);
            let r = select(v * c + u * s, v * c - u * s, first);
            word = enc_{{DT}}(word, l, C_{{DT}}(r));
        }
    }
    y[w] = word;
}
