// Tensor-core path of f16 matmul (adapters with EXPERIMENTAL_COOPERATIVE_MATRIX offering
// 16x16x16 f16 x f16 -> f32 tiles and 32-wide subgroups; see ops/matmul.rs for when it runs).
// One subgroup per workgroup computes a 64x64 block of the output as 4x4 cooperative tiles (each
// loaded A and B tile feeds four multiply-adds; `matmul_coop64*`), or a 32x32 block as 2x2 tiles
// for matmuls too small to fill the GPU with 64x64 blocks (`matmul_coop32*`: T64 false, the
// code for tiles 2 and 3 is compiled out). f32 accumulation, written to an f32 buffer (the
// launcher rounds it to f16). a is row-major; b is row-major or, for the `_nt` variants, the
// transpose of a row-major [N, K]. M and N are multiples of the block size, K of 16, and
// offsets and row strides multiples of 8 elements (16 bytes). The accumulators are written out
// by name: naga keeps cooperative matrices out of arrays.
// Same parameter block as matmul.wgsl: p[0..3] m n k, batch dims, then per operand (a at 12,
// b at 23): offset, row stride, column stride, batch strides.
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const B_T: bool = {{BT}};
const T64: bool = {{T64}};
const BLOCK: u32 = select(32u, 64u, T64);

@compute @workgroup_size(32)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let k = p[2];
    let r0 = wg.y * BLOCK;
    let c0 = wg.x * BLOCK;
    let z = wg.z;
    let ab = boff(z, 12u);
    let lda = p[13u];
    let bb = boff(z, 23u);
    // b's leading dimension: its row stride, or its column stride when it is a transpose
    let ldb = select(p[24u], p[25u], B_T);
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c22 = coop_mat16x16<f32, C>();
    var c23 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
    var c32 = coop_mat16x16<f32, C>();
    var c33 = coop_mat16x16<f32, C>();
    // (indices are named `let`s: naga 30's SPIR-V writer needs them emitted before the load)
    for (var kk = 0u; kk < k; kk = kk + 16u) {
        var a0: coop_mat16x16<f16, A>;
        var a1: coop_mat16x16<f16, A>;
        var a2: coop_mat16x16<f16, A>;
        var a3: coop_mat16x16<f16, A>;
        var b0: coop_mat16x16<f16, B>;
        var b1: coop_mat16x16<f16, B>;
        var b2: coop_mat16x16<f16, B>;
        var b3: coop_mat16x16<f16, B>;
        let ia0 = ab + r0 * lda + kk;
        a0 = coopLoadT<coop_mat16x16<f16, A>>(&a[ia0], lda);
        let ia1 = ab + (r0 + 16u) * lda + kk;
        a1 = coopLoadT<coop_mat16x16<f16, A>>(&a[ia1], lda);
        if (B_T) {
            // element (kk, c) of b at bb + kk + c * ldb: column-major tiles
            let ib0 = bb + kk + c0 * ldb;
            b0 = coopLoad<coop_mat16x16<f16, B>>(&b[ib0], ldb);
            let ib1 = bb + kk + (c0 + 16u) * ldb;
            b1 = coopLoad<coop_mat16x16<f16, B>>(&b[ib1], ldb);
        } else {
            let ib0 = bb + kk * ldb + c0;
            b0 = coopLoadT<coop_mat16x16<f16, B>>(&b[ib0], ldb);
            let ib1 = bb + kk * ldb + c0 + 16u;
            b1 = coopLoadT<coop_mat16x16<f16, B>>(&b[ib1], ldb);
        }
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        if (T64) {
            let ia2 = ab + (r0 + 32u) * lda + kk;
            a2 = coopLoadT<coop_mat16x16<f16, A>>(&a[ia2], lda);
            let ia3 = ab + (r0 + 48u) * lda + kk;
            a3 = coopLoadT<coop_mat16x16<f16, A>>(&a[ia3], lda);
            if (B_T) {
                // element (kk, c) of b at bb + kk + c * ldb: column-major tiles
                let ib2 = bb + kk + (c0 + 32u) * ldb;
                b2 = coopLoad<coop_mat16x16<f16, B>>(&b[ib2], ldb);
                let ib3 = bb + kk + (c0 + 48u) * ldb;
                b3 = coopLoad<coop_mat16x16<f16, B>>(&b[ib3], ldb);
            } else {
                let ib2 = bb + kk * ldb + c0 + 32u;
                b2 = coopLoadT<coop_mat16x16<f16, B>>(&b[ib2], ldb);
                let ib3 = bb + kk * ldb + c0 + 48u;
                b3 = coopLoadT<coop_mat16x16<f16, B>>(&b[ib3], ldb);
            }
            c02 = coopMultiplyAdd(a0, b2, c02);
            c03 = coopMultiplyAdd(a0, b3, c03);
            c12 = coopMultiplyAdd(a1, b2, c12);
            c13 = coopMultiplyAdd(a1, b3, c13);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            c22 = coopMultiplyAdd(a2, b2, c22);
            c23 = coopMultiplyAdd(a2, b3, c23);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
            c32 = coopMultiplyAdd(a3, b2, c32);
            c33 = coopMultiplyAdd(a3, b3, c33);
        }
    }
    let o = z * m * n + r0 * n + c0;
    let o00 = o;
    coopStoreT(c00, &y[o00], n);
    let o01 = o + 16u;
    coopStoreT(c01, &y[o01], n);
    let o10 = o + 16u * n;
    coopStoreT(c10, &y[o10], n);
    let o11 = o + 16u * n + 16u;
    coopStoreT(c11, &y[o11], n);
    if (T64) {
        let o02 = o + 32u;
        coopStoreT(c02, &y[o02], n);
        let o03 = o + 48u;
        coopStoreT(c03, &y[o03], n);
        let o12 = o + 16u * n + 32u;
        coopStoreT(c12, &y[o12], n);
        let o13 = o + 16u * n + 48u;
        coopStoreT(c13, &y[o13], n);
        let o20 = o + 32u * n;
        coopStoreT(c20, &y[o20], n);
        let o21 = o + 32u * n + 16u;
        coopStoreT(c21, &y[o21], n);
        let o22 = o + 32u * n + 32u;
        coopStoreT(c22, &y[o22], n);
        let o23 = o + 32u * n + 48u;
        coopStoreT(c23, &y[o23], n);
        let o30 = o + 48u * n;
        coopStoreT(c30, &y[o30], n);
        let o31 = o + 48u * n + 16u;
        coopStoreT(c31, &y[o31], n);
        let o32 = o + 48u * n + 32u;
        coopStoreT(c32, &y[o32], n);
        let o33 = o + 48u * n + 48u;
        coopStoreT(c33, &y[o33], n);
    }
}
