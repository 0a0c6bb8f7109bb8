// Elementwise unary ops: one invocation per output word (P_DT elements).
// Floats compute in f32 (halves widen on load); integers in their compute type.
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read_write> y: array<W_{{DT}}>;

fn op_neg(v: C_{{DT}}) -> C_{{DT}} { return -v; }
fn op_abs(v: C_{{DT}}) -> C_{{DT}} { return abs(v); }
fn op_relu(v: C_{{DT}}) -> C_{{DT}} { return max(v, C_{{DT}}(0)); }
fn op_exp(v: f32) -> f32 { return exp(v); }
fn op_log(v: f32) -> f32 { return log(v); }
fn op_sqrt(v: f32) -> f32 { return sqrt(v); }
fn op_rsqrt(v: f32) -> f32 { return 1.0 / sqrt(v); }
fn op_recip(v: f32) -> f32 { return 1.0 / v; }
fn op_tanh(v: f32) -> f32 { return select(tanh(v), sign(v), abs(v) > 10.0); }
fn op_sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }
fn op_silu(v: f32) -> f32 { return v / (1.0 + exp(-v)); }
fn op_sin(v: f32) -> f32 { return sin(v); }
fn op_cos(v: f32) -> f32 { return cos(v); }

// erf with fractional error below 1.2e-7 (Numerical Recipes' erfc Chebyshev fit)
fn erf_f32(v: f32) -> f32 {
    let z = abs(v);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
    return sign(v) * (1.0 - r);
}
fn op_gelu(v: f32) -> f32 { return 0.5 * v * (1.0 + erf_f32(v * 0.7071067811865476)); }
fn op_gelu_tanh(v: f32) -> f32 {
    return 0.5 * v * (1.0 + op_tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
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
            word = enc_{{DT}}(word, l, op_{{OP}}(dec_{{DT}}(x[i / P_{{DT}}], i % P_{{DT}})));
        }
    }
    y[w] = word;
}
