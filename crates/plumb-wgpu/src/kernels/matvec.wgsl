// Matrix-vector product for decoding (M == 1): 8 output columns per workgroup, 32 invocations
// per column splitting K (coalesced when b's k stride is 1, i.e. a transposed weight).
// Same parameter block as matmul.wgsl.
@group(0) @binding(1) var<storage, read> a: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> b: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read_write> y: array<W_{{OT}}>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let n = p[1];
    let kdim = p[2];
    let g = wg.x + wg.y * nwg.x;
    if (g * 8u >= n) { return; }
    let z = wg.z;
    let ao = boff(z, 12u);
    let sak = p[14];
    let bo = boff(z, 23u);
    let sbk = p[24];
    let sbn = p[25];
    let col = g * 8u + t / 32u;
    let lane = t % 32u;
    var s = 0.0;
    if (col < n) {
        for (var k = lane; k < kdim; k = k + 32u) {
            let i = ao + k * sak;
            let j = bo + k * sbk + col * sbn;
            s = s + f32(dec_{{DT}}(a[i / P_{{DT}}], i % P_{{DT}}))
                * f32(dec_{{DT}}(b[j / P_{{DT}}], j % P_{{DT}}));
        }
    }
    red[t] = s;
    workgroupBarrier();
    for (var h = 16u; h > 0u; h = h >> 1u) {
        if (lane < h) { red[t] = red[t] + red[t + h]; }
        workgroupBarrier();
    }
    if (t < 8u / P_{{OT}}) {
        let c = g * 8u + t * P_{{OT}};
        if (c < n) {
            var word = W_{{OT}}();
            for (var l = 0u; l < P_{{OT}}; l = l + 1u) {
                if (c + l < n) {
                    word = enc_{{OT}}(word, l, C_{{OT}}(red[(t * P_{{OT}} + l) * 32u]));
                }
            }
            y[(z * n + c) / P_{{OT}}] = word;
        }
    }
}
