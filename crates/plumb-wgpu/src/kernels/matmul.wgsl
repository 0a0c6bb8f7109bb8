// Batched matmul y[z] = a[z] (M x K) * b[z] (K x N), any strides (transposes and broadcast
// batches are strides). 64x64 output tiles per workgroup of 16x16 invocations, 4x4 outputs per
// invocation held in registers, 16-deep K slices staged in workgroup memory; f32 accumulation.
// p[0] M, p[1] N, p[2] K, p[3] batch rank, p[4..12] batch shape,
// p[12..23] a: offset, row stride, k stride, 8 batch strides; p[23..34] b: offset, k stride,
// column stride, 8 batch strides. OT is DT, or f32 when packed rows would split words.
@group(0) @binding(1) var<storage, read> a: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> b: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read_write> y: array<W_{{OT}}>;

var<workgroup> As: array<f32, 1024>; // [16 k][64 rows]
var<workgroup> Bs: array<f32, 1024>; // [16 k][64 columns]

@compute @workgroup_size(16, 16)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let kdim = p[2];
    let z = wg.z;
    let ao = boff(z, 12u);
    let sam = p[13];
    let sak = p[14];
    let bo = boff(z, 23u);
    let sbk = p[24];
    let sbn = p[25];
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let tid = lid.y * 16u + lid.x;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < kdim; k0 = k0 + 16u) {
        for (var q = 0u; q < 4u; q = q + 1u) {
            let idx = tid + q * 256u;
            let am = idx / 16u;
            let ak = idx % 16u;
            var av = 0.0;
            if (row0 + am < m && k0 + ak < kdim) {
                let i = ao + (row0 + am) * sam + (k0 + ak) * sak;
                av = f32(dec_{{DT}}(a[i / P_{{DT}}], i % P_{{DT}}));
            }
            As[ak * 64u + am] = av;
            let bk = idx / 64u;
            let bn = idx % 64u;
            var bv = 0.0;
            if (col0 + bn < n && k0 + bk < kdim) {
                let i = bo + (k0 + bk) * sbk + (col0 + bn) * sbn;
                bv = f32(dec_{{DT}}(b[i / P_{{DT}}], i % P_{{DT}}));
            }
            Bs[bk * 64u + bn] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let ab = kk * 64u + lid.y * 4u;
            let bb = kk * 64u + lid.x * 4u;
            let bv = vec4<f32>(Bs[bb], Bs[bb + 1u], Bs[bb + 2u], Bs[bb + 3u]);
            acc[0] = acc[0] + As[ab] * bv;
            acc[1] = acc[1] + As[ab + 1u] * bv;
            acc[2] = acc[2] + As[ab + 2u] * bv;
            acc[3] = acc[3] + As[ab + 3u] * bv;
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + lid.y * 4u + i;
        if (r >= m) { break; }
        for (var j = 0u; j < 4u; j = j + P_{{OT}}) {
            let c = col0 + lid.x * 4u + j;
            if (c >= n) { break; }
            let e = (z * m + r) * n + c;
            var word = W_{{OT}}();
            for (var l = 0u; l < P_{{OT}}; l = l + 1u) {
                if (c + l < n) {
                    word = enc_{{OT}}(word, l, C_{{OT}}(acc[i][j + l]));
                }
            }
            y[e / P_{{OT}}] = word;
        }
    }
}
