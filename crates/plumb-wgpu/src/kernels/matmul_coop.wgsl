// Tensor-core path of f16 matmul (adapters with EXPERIMENTAL_COOPERATIVE_MATRIX offering
// 16x16x16 f16 x f16 -> f32 tiles and 32-wide subgroups; see ops/matmul.rs for when it runs).
// One subgroup per workgroup computes a 32x32 block of the output as 2x2 cooperative tiles, f32
// accumulation, written to an f32 buffer (the launcher rounds it to f16). a is row-major; b is
// row-major (`matmul_coop`) or the transpose of a row-major [N, K] (`matmul_coop_nt`). M and N are
// multiples of 32, K of 16, and offsets and row strides multiples of 8 elements (16 bytes).
// Same parameter block as matmul.wgsl: p[0..3] m n k, batch dims, then per operand (a at 12,
// b at 23): offset, row stride, column stride, batch strides.
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const B_T: bool = {{BT}};

fn boff(z: u32, blk: u32) -> u32 {
    var rem = z;
    var o = p[blk];
    for (var d = p[3]; d > 0u; d = d - 1u) {
        let size = p[3u + d];
        o = o + (rem % size) * p[blk + 2u + d];
        rem = rem / size;
    }
    return o;
}

@compute @workgroup_size(32)
fn {{NAME}}(@builtin(workgroup_id) wg: vec3<u32>) {
    let m = p[0];
    let n = p[1];
    let k = p[2];
    let r0 = wg.y * 32u;
    let c0 = wg.x * 32u;
    let z = wg.z;
    let ab = boff(z, 12u);
    let lda = p[13u];
    let bb = boff(z, 23u);
    // b's leading dimension: its row stride, or its column stride when it is a transpose
    let ldb = select(p[24u], p[25u], B_T);
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    // (indices are named `let`s: naga 30's SPIR-V writer needs them emitted before the load)
    for (var kk = 0u; kk < k; kk = kk + 16u) {
        let ia0 = ab + r0 * lda + kk;
        let ia1 = ia0 + 16u * lda;
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&a[ia0], lda);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&a[ia1], lda);
        var b0: coop_mat16x16<f16, B>;
        var b1: coop_mat16x16<f16, B>;
        if (B_T) {
            // element (kk, c) of b at bb + kk + c * ldb: column-major tiles
            let ib0 = bb + kk + c0 * ldb;
            let ib1 = ib0 + 16u * ldb;
            b0 = coopLoad<coop_mat16x16<f16, B>>(&b[ib0], ldb);
            b1 = coopLoad<coop_mat16x16<f16, B>>(&b[ib1], ldb);
        } else {
            let ib0 = bb + kk * ldb + c0;
            let ib1 = ib0 + 16u;
            b0 = coopLoadT<coop_mat16x16<f16, B>>(&b[ib0], ldb);
            b1 = coopLoadT<coop_mat16x16<f16, B>>(&b[ib1], ldb);
        }
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
    }
    let o00 = z * m * n + r0 * n + c0;
    let o01 = o00 + 16u;
    let o10 = o00 + 16u * n;
    let o11 = o10 + 16u;
    coopStoreT(c00, &y[o00], n);
    coopStoreT(c01, &y[o01], n);
    coopStoreT(c10, &y[o10], n);
    coopStoreT(c11, &y[o11], n);
}
