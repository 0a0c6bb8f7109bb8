// Layer norm and RMS norm over the last dim: one workgroup per row, f32 accumulation.
// Weight and bias are bound with layouts broadcast to x's shape (inputs 1 and 2).
// p[0] row length, p[1] eps (f32 bits), p[2] has weight, p[3] has bias
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> wt: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read> bs: array<W_{{DT}}>;
@group(0) @binding(4) var<storage, read_write> y: array<W_{{DT}}>;

var<workgroup> red: array<f32, 256>;

fn load(e: u32) -> f32 {
    let i = at(e, 0u);
    return f32(dec_{{DT}}(x[i / P_{{DT}}], i % P_{{DT}}));
}

fn block_sum(v: f32, t: u32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = red[t] + red[t + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// layer norm subtracts the mean; RMS norm does not
fn centered_layer_norm() -> bool { return true; }
fn centered_rms_norm() -> bool { return false; }

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row = wg.x + wg.y * nwg.x;
    let len = p[0];
    if (row * len >= p[4]) { return; }
    let base = row * len;
    var mean = 0.0;
    if (centered_{{OP}}()) {
        var s = 0.0;
        for (var j = t; j < len; j = j + WG) { s = s + load(base + j); }
        mean = block_sum(s, t) / f32(len);
    }
    var q = 0.0;
    for (var j = t; j < len; j = j + WG) {
        let d = load(base + j) - mean;
        q = q + d * d;
    }
    let inv = 1.0 / sqrt(block_sum(q, t) / f32(len) + pf(1u));
    let words = len / P_{{DT}};
    for (var k = t; k < words; k = k + WG) {
        var word = W_{{DT}}();
        for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
            let e = base + k * P_{{DT}} + l;
            var v = (load(e) - mean) * inv;
            if (p[2] != 0u) {
                let i = at(e, 1u);
                v = v * f32(dec_{{DT}}(wt[i / P_{{DT}}], i % P_{{DT}}));
            }
            if (p[3] != 0u) {
                let i = at(e, 2u);
                v = v + f32(dec_{{DT}}(bs[i / P_{{DT}}], i % P_{{DT}}));
            }
            word = enc_{{DT}}(word, l, C_{{DT}}(v));
        }
        y[base / P_{{DT}} + k] = word;
    }
}
