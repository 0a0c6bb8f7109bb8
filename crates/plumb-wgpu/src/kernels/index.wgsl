// index_select and gather: out[c] = x[c with c[dim] replaced by ids[..]]. DT is the bit codec
// of x, OT the bit codec of the ids (i32, i64 or u8). The shape is the output's; input 0's
// layout is x's strides (offset, strides), input 1's the ids' strides over the output shape
// (zero except along dim for index_select). An id outside [0, size) gives a zero element.
// p[0] dim, p[1] x's size along dim
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> ids: array<W_{{OT}}>;
@group(0) @binding(3) var<storage, read_write> y: array<W_{{DT}}>;

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    let n = p[4];
    if (w * P_{{DT}} >= n) { return; }
    let dim = p[0];
    var word = W_{{DT}}();
    for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
        let e = w * P_{{DT}} + l;
        if (e >= n) { break; }
        var rem = e;
        var xi = p[14];
        var ii = p[23];
        var cd = 0u;
        for (var d = p[5]; d > 0u; d = d - 1u) {
            let size = p[5u + d];
            let c = rem % size;
            rem = rem / size;
            ii = ii + c * p[23u + d];
            if (d - 1u != dim) {
                xi = xi + c * p[14u + d];
            }
        }
        let id = lo_{{OT}}(dec_{{OT}}(ids[ii / P_{{OT}}], ii % P_{{OT}}));
        if (id < p[1]) {
            xi = xi + id * p[15u + dim];
            word = enc_{{DT}}(word, l, dec_{{DT}}(x[xi / P_{{DT}}], xi % P_{{DT}}));
        }
    }
    y[w] = word;
}
