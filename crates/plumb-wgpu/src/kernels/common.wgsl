// Shared by every kernel: the parameter block and strided indexing.
// p[0..4]  op-specific scalars (f32 values as bits)
// p[4]     number of elements of the output (or rows, as the kernel says)
// p[5]     rank (at most 8) and p[6..14] the shape the kernel iterates over
// p[14 + 9 * i]  layout of input i over that shape: offset, then 8 strides (elements)
@group(0) @binding(0) var<storage, read> p: array<u32>;

const WG: u32 = 256u;
const STRIDED: bool = {{STRIDED}};

// linear invocation index of a 1-D dispatch that may be split over y for large tensors
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// storage index (elements) of element `e` (row-major over the shape) of input `i`
fn at(e: u32, i: u32) -> u32 {
    let lb = 14u + 9u * i;
    if (!STRIDED) {
        return p[lb] + e;
    }
    var rem = e;
    var idx = p[lb];
    for (var d = p[5]; d > 0u; d = d - 1u) {
        let dim = p[5u + d];
        idx = idx + (rem % dim) * p[lb + d];
        rem = rem / dim;
    }
    return idx;
}

fn pf(i: u32) -> f32 {
    return bitcast<f32>(p[i]);
}

// matmul kernels: offset (elements) of batch `z` of the operand whose layout block starts at
// p[blk] (offset, row stride, column stride, batch strides), over the batch dims p[4..]
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
