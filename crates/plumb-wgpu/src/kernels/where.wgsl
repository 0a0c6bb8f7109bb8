// cond ? a : b. The values are moved as raw bits (DT is a bit codec: b8/b16/b32/b64).
@group(0) @binding(1) var<storage, read> c: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read> b: array<W_{{DT}}>;
@group(0) @binding(4) var<storage, read_write> y: array<W_{{DT}}>;

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    let n = p[4];
    if (w * P_{{DT}} >= n) { return; }
    var word = W_{{DT}}();
    for (var l = 0u; l < P_{{DT}}; l = l + 1u) {
        let e = w * P_{{DT}} + l;
        if (e < n) {
            let k = at(e, 0u);
            let take_a = ((c[k / 4u] >> (8u * (k % 4u))) & 0xffu) != 0u;
            var v: C_{{DT}};
            if (take_a) {
                let i = at(e, 1u);
                v = dec_{{DT}}(a[i / P_{{DT}}], i % P_{{DT}});
            } else {
                let j = at(e, 2u);
                v = dec_{{DT}}(b[j / P_{{DT}}], j % P_{{DT}});
            }
            word = enc_{{DT}}(word, l, v);
        }
    }
    y[w] = word;
}
