// Fill words with a one- or two-word pattern (the host encodes the value in the dtype).
// p[0], p[1] the pattern; p[4] the number of words
@group(0) @binding(1) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    if (w >= p[4]) { return; }
    y[w] = select(p[0], p[1], (w & 1u) == 1u);
}
