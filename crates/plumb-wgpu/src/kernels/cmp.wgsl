// Comparisons: operands of DT, output bool (one byte each, four per word).
@group(0) @binding(1) var<storage, read> a: array<W_{{DT}}>;
@group(0) @binding(2) var<storage, read> b: array<W_{{DT}}>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

fn op_eq(u: C_{{DT}}, v: C_{{DT}}) -> bool { return u == v; }
fn op_ne(u: C_{{DT}}, v: C_{{DT}}) -> bool { return u != v; }
fn op_lt(u: C_{{DT}}, v: C_{{DT}}) -> bool { return u < v; }
fn op_le(u: C_{{DT}}, v: C_{{DT}}) -> bool { return u <= v; }
fn op_gt(u: C_{{DT}}, v: C_{{DT}}) -> bool { return u > v; }
fn op_ge(u: C_{{DT}}, v: C_{{DT}}) -> bool { return u >= v; }

@compute @workgroup_size(256)
fn {{NAME}}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat(gid, nwg);
    let n = p[4];
    if (w * 4u >= n) { return; }
    var word = 0u;
    for (var l = 0u; l < 4u; l = l + 1u) {
        let e = w * 4u + l;
        if (e < n) {
            let i = at(e, 0u);
            let j = at(e, 1u);
            let u = dec_{{DT}}(a[i / P_{{DT}}], i % P_{{DT}});
            let v = dec_{{DT}}(b[j / P_{{DT}}], j % P_{{DT}});
            word = word | (select(0u, 1u, op_{{OP}}(u, v)) << (8u * l));
        }
    }
    y[w] = word;
}
