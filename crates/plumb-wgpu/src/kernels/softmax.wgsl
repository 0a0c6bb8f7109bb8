// Softmax / log-softmax over the last dim: one workgroup per row, f32 accumulation.
// The row length is a multiple of P_DT (the host computes packed odd rows through f32), so
// each output word belongs to one row. p[0] row length; {{OP}} is softmax or log_softmax.
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read_write> y: array<W_{{DT}}>;

var<workgroup> red: array<f32, 256>;

fn load(e: u32) -> f32 {
    let i = at(e, 0u);
    return f32(dec_{{DT}}(x[i / P_{{DT}}], i % P_{{DT}}));
}

fn fin_softmax(v: f32, mx: f32, sum: f32) -> f32 { return exp(v - mx) / sum; }
fn fin_log_softmax(v: f32, mx: f32, sum: f32) -> f32 { return v - mx - log(sum); }

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row = wg.x + wg.y * nwg.x;
    let len = p[0];
    if (row * len >= p[4]) { return; }
    let base = row * len;
    var mx = -3.4028235e38;
    for (var j = t; j < len; j = j + WG) {
        mx = max(mx, load(base + j));
    }
    red[t] = mx;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = max(red[t], red[t + s]); }
        workgroupBarrier();
    }
    mx = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = t; j < len; j = j + WG) {
        sum = sum + exp(load(base + j) - mx);
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = red[t] + red[t + s]; }
        workgroupBarrier();
    }
    sum = red[0];
    let words = len / P_{{DT}};
    for (var q = t; q < words; q = q + WG) {
        var word = W_{{DT}}();
        for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
            let e = base + q * P_{{DT}} + l;
            word = enc_{{DT}}(word, l, C_{{DT}}(fin_{{OP}}(load(e), mx, sum)));
        }
        y[base / P_{{DT}} + q] = word;
    }
}
