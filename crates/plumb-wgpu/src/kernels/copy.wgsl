// Strided copy into a slab of a contiguous output (a whole copy, or one input of a cat).
// DT is a bit codec. The shape is the output's; the slab is [start, start + len) along `dim`;
// input 0's layout is over the slab's shape. Each invocation owns one output word and keeps
// the lanes outside the slab, so slabs that share a word are written by successive dispatches.
// p[0] dim, p[1] start, p[2] len, p[3] first word of this dispatch
@group(0) @binding(1) var<storage, read> x: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read_write> y: array<W_{{DT}}>;

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = p[3] + flat(gid, nwg);
    let n = p[4];
    if (w * P_{{DT}} >= n) { return; }
    let dim = p[0];
    let start = p[1];
    let len = p[2];
    var word = y[w];
    for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
        let e = w * P_{{DT}} + l;
        if (e >= n) { break; }
        var rem = e;
        var src = p[14];
        var inside = true;
        for (var d = p[5]; d > 0u; d = d - 1u) {
            let size = p[5u + d];
            var c = rem % size;
            rem = rem / size;
            if (d - 1u == dim) {
                if (c < start || c >= start + len) { inside = false; }
                c = c - start;
            }
            src = src + c * p[14u + d];
        }
        if (inside) {
            word = enc_{{DT}}(word, l, dec_{{DT}}(x[src / P_{{DT}}], src % P_{{DT}}));
        }
    }
    y[w] = word;
}
