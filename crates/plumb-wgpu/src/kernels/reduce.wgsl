// Reductions over one dim: one workgroup per output word. The shape is the output's (the
// reduced dim has size 1); input 0's layout gives the first element of each reduced run.
// p[0] length of the reduced dim, p[1] its stride in the input
// Halves accumulate in f32 (their compute type); integers in i32 / i64.
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read_write> y: array<W_{{OT}}>;

struct Acc {
    v: C_{{DT}},
    i: u32,
}
const EMPTY: u32 = 0xffffffffu;

var<workgroup> sv: array<C_{{DT}}, 256>;
var<workgroup> si: array<u32, 256>;

// whether `b` replaces `a` as the running maximum (NaN wins, then the first index)
fn beats_max(a: Acc, b: Acc) -> bool {
    if (b.i == EMPTY) { return false; }
    if (a.i == EMPTY) { return true; }
    if (isnan_{{DT}}(b.v)) { return !isnan_{{DT}}(a.v) || b.i < a.i; }
    if (isnan_{{DT}}(a.v)) { return false; }
    return b.v > a.v || (b.v == a.v && b.i < a.i);
}
fn beats_min(a: Acc, b: Acc) -> bool {
    if (b.i == EMPTY) { return false; }
    if (a.i == EMPTY) { return true; }
    if (isnan_{{DT}}(b.v)) { return !isnan_{{DT}}(a.v) || b.i < a.i; }
    if (isnan_{{DT}}(a.v)) { return false; }
    return b.v < a.v || (b.v == a.v && b.i < a.i);
}
fn comb_sum(a: Acc, b: Acc) -> Acc { return Acc(a.v + b.v, min(a.i, b.i)); }
fn comb_mean(a: Acc, b: Acc) -> Acc { return comb_sum(a, b); }
fn comb_max(a: Acc, b: Acc) -> Acc {
    if (beats_max(a, b)) { return b; }
    return a;
}
fn comb_argmax(a: Acc, b: Acc) -> Acc { return comb_max(a, b); }
fn comb_min(a: Acc, b: Acc) -> Acc {
    if (beats_min(a, b)) { return b; }
    return a;
}

fn fin_sum(a: Acc, r: u32) -> C_{{OT}} { return C_{{OT}}(a.v); }
fn fin_mean(a: Acc, r: u32) -> C_{{OT}} { return C_{{OT}}(a.v / C_{{DT}}(r)); }
fn fin_max(a: Acc, r: u32) -> C_{{OT}} { return C_{{OT}}(a.v); }
fn fin_min(a: Acc, r: u32) -> C_{{OT}} { return C_{{OT}}(a.v); }
fn fin_argmax(a: Acc, r: u32) -> C_{{OT}} { return C_{{OT}}(a.i); }

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let w = wg.x + wg.y * nwg.x;
    let n = p[4];
    if (w * P_{{OT}} >= n) { return; }
    let len = p[0];
    let rs = p[1];
    var word = W_{{OT}}();
    for (var l = 0u; l < P_{{OT}}; l = l + 1u) {
        let o = w * P_{{OT}} + l;
        var acc = Acc(C_{{DT}}(0), EMPTY);
        if (o < n) {
            let base = at(o, 0u);
            for (var r = t; r < len; r = r + WG) {
                let i = base + r * rs;
                acc = comb_{{OP}}(acc, Acc(dec_{{DT}}(x[i / P_{{DT}}], i % P_{{DT}}), r));
            }
        }
        sv[t] = acc.v;
        si[t] = acc.i;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s = s >> 1u) {
            if (t < s) {
                let c = comb_{{OP}}(Acc(sv[t], si[t]), Acc(sv[t + s], si[t + s]));
                sv[t] = c.v;
                si[t] = c.i;
            }
            workgroupBarrier();
        }
        if (t == 0u && o < n) {
            word = enc_{{OT}}(word, l, fin_{{OP}}(Acc(sv[0], si[0]), len));
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        y[w] = word;
    }
}
