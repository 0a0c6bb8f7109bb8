// Elementwise binary ops on equal shapes (broadcasting is in the strides).
@group(0) @binding(1) var<storage, read> a: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> b: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read_write> y: array<W_{{DT}}>;

fn op_add(u: C_{{DT}}, v: C_{{DT}}) -> C_{{DT}} { return u + v; }
fn op_sub(u: C_{{DT}}, v: C_{{DT}}) -> C_{{DT}} { return u - v; }
fn op_mul(u: C_{{DT}}, v: C_{{DT}}) -> C_{{DT}} { return u * v; }
fn op_div(u: C_{{DT}}, v: C_{{DT}}) -> C_{{DT}} { return u / v; }
// NaN in either operand gives NaN
fn op_maximum(u: C_{{DT}}, v: C_{{DT}}) -> C_{{DT}} { return select(max(u, v), u + v, isnan_{{DT}}(u) || isnan_{{DT}}(v)); }
fn op_minimum(u: C_{{DT}}, v: C_{{DT}}) -> C_{{DT}} { return select(min(u, v), u + v, isnan_{{DT}}(u) || isnan_{{DT}}(v)); }
fn nan32(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
// pow with the usual real semantics: negative bases only for integral exponents
fn op_pow(u: f32, v: f32) -> f32 {
    if (v == 0.0) { return 1.0; }
    let r = pow(abs(u), v);
    if (u >= 0.0 || nan32(u)) { return select(r, u, nan32(u)); }
    if (floor(v) != v) { return bitcast<f32>(0x7fc00000u); }
    let odd = abs(v) < 16777216.0 && (i32(abs(v)) & 1) == 1;
    return select(r, -r, odd);
}

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    let n = p[4];
    if (w * P_{{DT}} >= n) { return; }
    var word = W_{{DT}}();
    for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
        let e = w * P_{{DT}} + l;
        if (e < n) {
            let i = at(e, 0u);
            let j = at(e, 1u);
            let u = dec_{{DT}}(a[i / P_{{DT}}], i % P_{{DT}});
            let v = dec_{{DT}}(b[j / P_{{DT}}], j % P_{{DT}});
            word = enc_{{DT}}(word, l, op_{{OP}}(u, v));
        }
    }
    y[w] = word;
}
