// Fast path of matmul: a [.., M, K] row-major with K % 4 == 0, and b either row-major [.., K, N]
// with N % 4 == 0 (`matmul_vec4`) or the transpose of a row-major [.., N, K] (`matmul_vec4_nt`,
// the linear-layer case x * W^T); unit inner strides, 4-aligned offsets and strides.
// 128x128 output tiles per workgroup of 16x16 invocations; each invocation keeps 8x8 outputs in
// registers (rows ty*4 + {0..3, 64..67}, columns tx*4 + {0..3, 64..67}); 16-deep K slices are
// staged in workgroup memory with vec4 loads, and the next slice is fetched into registers
// while the current one is multiplied. f32 accumulation. Same parameter block as matmul.wgsl.
// The inner loop is written out (c<row><column half> accumulators) so it stays in registers.
@group(0) @binding(1) var<storage, read> a: array<V4_{{DT}}>;
@group(0) @binding(2) var<storage, read> b: array<V4_{{DT}}>;
@group(0) @binding(3) var<storage, read_write> y: array<W_{{OT}}>;

var<workgroup> As: array<vec4<f32>, 512>; // [128 rows][4 k quads]
var<workgroup> Bs: array<vec4<f32>, 512>; // [16 k][32 column quads], or [128 columns][4 k quads] for nt

// b is the transpose of a row-major [N, K] tensor (the op name ends in _nt)
const B_T: bool = {{BT}};

fn store(z: u32, r: u32, c: u32, v: vec4<f32>) {
    let m = p[0];
    let n = p[1];
    if (r >= m || c >= n) { return; }
    let e = (z * m + r) * n + c;
    for (var j = 0u; j < 4u; j = j + P_{{OT}}) {
        if (c + j >= n) { return; }
        var word = W_{{OT}}();
        for (var l = 0u; l < P_{{OT}}; l = l + 1u) {
            if (c + j + l < n) {
                word = enc_{{OT}}(word, l, C_{{OT}}(v[j + l]));
            }
        }
        y[(e + j) / P_{{OT}}] = word;
    }
}

@compute @workgroup_size(16, 16)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let kdim = p[2];
    let z = wg.z;
    let ao = boff(z, 12u) / 4u;
    let sam = p[13] / 4u;
    let bo = boff(z, 23u) / 4u;
    let sbk = p[24] / 4u;
    let row0 = wg.y * 128u;
    let col0 = wg.x * 128u;
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    let k4 = kdim / 4u;
    // this invocation's share of each slice: a rows tid / 4 and 64 + tid / 4 at k quad
    // tid % 4; b k rows tid / 32 and 8 + tid / 32 at column quad tid % 32
    let ar = tid / 4u;
    let aq = tid % 4u;
    let bk = tid / 32u;
    let bq = tid % 32u;
    let a_ok0 = row0 + ar < m;
    let a_ok1 = row0 + ar + 64u < m;
    let a_base0 = ao + (row0 + ar) * sam + aq;
    let a_base1 = a_base0 + 64u * sam;
    // row-major b: k rows bk, bk + 8 at column quad bq; transposed b: columns ar, ar + 64
    // (rows of the [N, K] tensor, stride p[25]) at k quad aq, like a
    let b_ok = select(col0 + bq * 4u < n, true, B_T);
    let bt_ok0 = col0 + ar < n;
    let bt_ok1 = col0 + ar + 64u < n;
    let sbn = p[25] / 4u;
    let b_base = select(bo + bk * sbk + col0 / 4u + bq, bo + (col0 + ar) * sbn + aq, B_T);
    var pa0 = vec4<f32>(0.0);
    var pa1 = vec4<f32>(0.0);
    var pb0 = vec4<f32>(0.0);
    var pb1 = vec4<f32>(0.0);
    if (aq < k4) {
        if (a_ok0) { pa0 = ld4_{{DT}}(a[a_base0]); }
        if (a_ok1) { pa1 = ld4_{{DT}}(a[a_base1]); }
    }
    if (B_T) {
        if (aq < k4) {
            if (bt_ok0) { pb0 = ld4_{{DT}}(b[b_base]); }
            if (bt_ok1) { pb1 = ld4_{{DT}}(b[b_base + 64u * sbn]); }
        }
    } else if (b_ok) {
        if (bk < kdim) { pb0 = ld4_{{DT}}(b[b_base]); }
        if (bk + 8u < kdim) { pb1 = ld4_{{DT}}(b[b_base + 8u * sbk]); }
    }
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < kdim; k0 = k0 + 16u) {
        As[ar * 4u + aq] = pa0;
        As[(ar + 64u) * 4u + aq] = pa1;
        if (B_T) {
            Bs[ar * 4u + aq] = pb0;
            Bs[(ar + 64u) * 4u + aq] = pb1;
        } else {
            Bs[bk * 32u + bq] = pb0;
            Bs[(bk + 8u) * 32u + bq] = pb1;
        }
        workgroupBarrier();
        // fetch the next slice while this one is multiplied
        let kn = k0 + 16u;
        pa0 = vec4<f32>(0.0);
        pa1 = vec4<f32>(0.0);
        pb0 = vec4<f32>(0.0);
        pb1 = vec4<f32>(0.0);
        if (kn / 4u + aq < k4) {
            if (a_ok0) { pa0 = ld4_{{DT}}(a[a_base0 + kn / 4u]); }
            if (a_ok1) { pa1 = ld4_{{DT}}(a[a_base1 + kn / 4u]); }
        }
        if (B_T) {
            if (kn / 4u + aq < k4) {
                if (bt_ok0) { pb0 = ld4_{{DT}}(b[b_base + kn / 4u]); }
                if (bt_ok1) { pb1 = ld4_{{DT}}(b[b_base + 64u * sbn + kn / 4u]); }
            }
        } else if (b_ok) {
            if (kn + bk < kdim) { pb0 = ld4_{{DT}}(b[b_base + kn * sbk]); }
            if (kn + bk + 8u < kdim) { pb1 = ld4_{{DT}}(b[b_base + (kn + 8u) * sbk]); }
        }
        for (var kq = 0u; kq < 4u; kq = kq + 1u) {
            let a0 = As[(ty * 4u + 0u) * 4u + kq];
            let a1 = As[(ty * 4u + 1u) * 4u + kq];
            let a2 = As[(ty * 4u + 2u) * 4u + kq];
            let a3 = As[(ty * 4u + 3u) * 4u + kq];
            let a4 = As[(64u + ty * 4u + 0u) * 4u + kq];
            let a5 = As[(64u + ty * 4u + 1u) * 4u + kq];
            let a6 = As[(64u + ty * 4u + 2u) * 4u + kq];
            let a7 = As[(64u + ty * 4u + 3u) * 4u + kq];
            var b00: vec4<f32>;
            var b01: vec4<f32>;
            var b10: vec4<f32>;
            var b11: vec4<f32>;
            var b20: vec4<f32>;
            var b21: vec4<f32>;
            var b30: vec4<f32>;
            var b31: vec4<f32>;
            if (B_T) {
                // columns tx*4 + j and 64 + tx*4 + j, each a vec4 over this k quad
                let t00 = Bs[(0u + tx * 4u + 0u) * 4u + kq];
                let t01 = Bs[(0u + tx * 4u + 1u) * 4u + kq];
                let t02 = Bs[(0u + tx * 4u + 2u) * 4u + kq];
                let t03 = Bs[(0u + tx * 4u + 3u) * 4u + kq];
                let t10 = Bs[(64u + tx * 4u + 0u) * 4u + kq];
                let t11 = Bs[(64u + tx * 4u + 1u) * 4u + kq];
                let t12 = Bs[(64u + tx * 4u + 2u) * 4u + kq];
                let t13 = Bs[(64u + tx * 4u + 3u) * 4u + kq];
                b00 = vec4<f32>(t00.x, t01.x, t02.x, t03.x);
                b01 = vec4<f32>(t10.x, t11.x, t12.x, t13.x);
                b10 = vec4<f32>(t00.y, t01.y, t02.y, t03.y);
                b11 = vec4<f32>(t10.y, t11.y, t12.y, t13.y);
                b20 = vec4<f32>(t00.z, t01.z, t02.z, t03.z);
                b21 = vec4<f32>(t10.z, t11.z, t12.z, t13.z);
                b30 = vec4<f32>(t00.w, t01.w, t02.w, t03.w);
                b31 = vec4<f32>(t10.w, t11.w, t12.w, t13.w);
            } else {
                b00 = Bs[(kq * 4u + 0u) * 32u + tx];
                b01 = Bs[(kq * 4u + 0u) * 32u + tx + 16u];
                b10 = Bs[(kq * 4u + 1u) * 32u + tx];
                b11 = Bs[(kq * 4u + 1u) * 32u + tx + 16u];
                b20 = Bs[(kq * 4u + 2u) * 32u + tx];
                b21 = Bs[(kq * 4u + 2u) * 32u + tx + 16u];
                b30 = Bs[(kq * 4u + 3u) * 32u + tx];
                b31 = Bs[(kq * 4u + 3u) * 32u + tx + 16u];
            }
            c00 = fma(vec4<f32>(a0.x), b00, c00);
            c01 = fma(vec4<f32>(a0.x), b01, c01);
            c10 = fma(vec4<f32>(a1.x), b00, c10);
            c11 = fma(vec4<f32>(a1.x), b01, c11);
            c20 = fma(vec4<f32>(a2.x), b00, c20);
            c21 = fma(vec4<f32>(a2.x), b01, c21);
            c30 = fma(vec4<f32>(a3.x), b00, c30);
            c31 = fma(vec4<f32>(a3.x), b01, c31);
            c40 = fma(vec4<f32>(a4.x), b00, c40);
            c41 = fma(vec4<f32>(a4.x), b01, c41);
            c50 = fma(vec4<f32>(a5.x), b00, c50);
            c51 = fma(vec4<f32>(a5.x), b01, c51);
            c60 = fma(vec4<f32>(a6.x), b00, c60);
            c61 = fma(vec4<f32>(a6.x), b01, c61);
            c70 = fma(vec4<f32>(a7.x), b00, c70);
            c71 = fma(vec4<f32>(a7.x), b01, c71);
            c00 = fma(vec4<f32>(a0.y), b10, c00);
            c01 = fma(vec4<f32>(a0.y), b11, c01);
            c10 = fma(vec4<f32>(a1.y), b10, c10);
            c11 = fma(vec4<f32>(a1.y), b11, c11);
            c20 = fma(vec4<f32>(a2.y), b10, c20);
            c21 = fma(vec4<f32>(a2.y), b11, c21);
            c30 = fma(vec4<f32>(a3.y), b10, c30);
            c31 = fma(vec4<f32>(a3.y), b11, c31);
            c40 = fma(vec4<f32>(a4.y), b10, c40);
            c41 = fma(vec4<f32>(a4.y), b11, c41);
            c50 = fma(vec4<f32>(a5.y), b10, c50);
            c51 = fma(vec4<f32>(a5.y), b11, c51);
            c60 = fma(vec4<f32>(a6.y), b10, c60);
            c61 = fma(vec4<f32>(a6.y), b11, c61);
            c70 = fma(vec4<f32>(a7.y), b10, c70);
            c71 = fma(vec4<f32>(a7.y), b11, c71);
            c00 = fma(vec4<f32>(a0.z), b20, c00);
            c01 = fma(vec4<f32>(a0.z), b21, c01);
            c10 = fma(vec4<f32>(a1.z), b20, c10);
            c11 = fma(vec4<f32>(a1.z), b21, c11);
            c20 = fma(vec4<f32>(a2.z), b20, c20);
            c21 = fma(vec4<f32>(a2.z), b21, c21);
            c30 = fma(vec4<f32>(a3.z), b20, c30);
            c31 = fma(vec4<f32>(a3.z), b21, c31);
            c40 = fma(vec4<f32>(a4.z), b20, c40);
            c41 = fma(vec4<f32>(a4.z), b21, c41);
            c50 = fma(vec4<f32>(a5.z), b20, c50);
            c51 = fma(vec4<f32>(a5.z), b21, c51);
            c60 = fma(vec4<f32>(a6.z), b20, c60);
            c61 = fma(vec4<f32>(a6.z), b21, c61);
            c70 = fma(vec4<f32>(a7.z), b20, c70);
            c71 = fma(vec4<f32>(a7.z), b21, c71);
            c00 = fma(vec4<f32>(a0.w), b30, c00);
            c01 = fma(vec4<f32>(a0.w), b31, c01);
            c10 = fma(vec4<f32>(a1.w), b30, c10);
            c11 = fma(vec4<f32>(a1.w), b31, c11);
            c20 = fma(vec4<f32>(a2.w), b30, c20);
            c21 = fma(vec4<f32>(a2.w), b31, c21);
            c30 = fma(vec4<f32>(a3.w), b30, c30);
            c31 = fma(vec4<f32>(a3.w), b31, c31);
            c40 = fma(vec4<f32>(a4.w), b30, c40);
            c41 = fma(vec4<f32>(a4.w), b31, c41);
            c50 = fma(vec4<f32>(a5.w), b30, c50);
            c51 = fma(vec4<f32>(a5.w), b31, c51);
            c60 = fma(vec4<f32>(a6.w), b30, c60);
            c61 = fma(vec4<f32>(a6.w), b31, c61);
            c70 = fma(vec4<f32>(a7.w), b30, c70);
            c71 = fma(vec4<f32>(a7.w), b31, c71);
        }
        workgroupBarrier();
    }
    let c0 = col0 + tx * 4u;
    store(z, row0 + ty * 4u + 0u, c0, c00);
    store(z, row0 + ty * 4u + 0u, c0 + 64u, c01);
    store(z, row0 + ty * 4u + 1u, c0, c10);
    store(z, row0 + ty * 4u + 1u, c0 + 64u, c11);
    store(z, row0 + ty * 4u + 2u, c0, c20);
    store(z, row0 + ty * 4u + 2u, c0 + 64u, c21);
    store(z, row0 + ty * 4u + 3u, c0, c30);
    store(z, row0 + ty * 4u + 3u, c0 + 64u, c31);
    store(z, row0 + 64u + ty * 4u + 0u, c0, c40);
    store(z, row0 + 64u + ty * 4u + 0u, c0 + 64u, c41);
    store(z, row0 + 64u + ty * 4u + 1u, c0, c50);
    store(z, row0 + 64u + ty * 4u + 1u, c0 + 64u, c51);
    store(z, row0 + 64u + ty * 4u + 2u, c0, c60);
    store(z, row0 + 64u + ty * 4u + 2u, c0 + 64u, c61);
    store(z, row0 + 64u + ty * 4u + 3u, c0, c70);
    store(z, row0 + 64u + ty * 4u + 3u, c0 + 64u, c71);
}
