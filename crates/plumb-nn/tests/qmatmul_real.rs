//! qmatmul on the real SmolLM2 weights (Q4_1 and Q8_0) agrees with dequantize + matmul on cpu,
//! for a single row (decode) and several rows (prefill).

mod common;

use common::*;
use plumb_core::{DType, Tensor};
use plumb_nn::gguf::GgufFile;

#[test]
fn qmatmul_matches_dequantized_matmul_on_real_weights() {
    let dev = cpu();
    let f = GgufFile::open(smollm2_file()).unwrap();
    for name in [
        "blk.0.attn_q.weight",
        "blk.0.ffn_down.weight",
        "token_embd.weight",
    ] {
        let info = f.get(name).unwrap();
        let plumb_nn::source::StoredDType::Plain(dt) = info.dtype else {
            panic!()
        };
        let w = Tensor::from_bytes(f.bytes(name).unwrap(), dt, &info.shape, &dev).unwrap();
        let wf = w.to_dtype(DType::F32).unwrap();
        let k = info.shape[1];
        for rows in [1usize, 5] {
            let x = Tensor::randn(0.0, 1.0, [rows, k], DType::F32, 7, &dev).unwrap();
            let q = x.qmatmul(&w).unwrap().to_vec::<f32>().unwrap();
            let r = x.matmul(&wf.t().unwrap()).unwrap().to_vec::<f32>().unwrap();
            let scale = r.iter().fold(0f32, |a, &v| a.max(v.abs())) as f64;
            let err = max_abs_diff(&q, &r);
            println!("{name} ({dt}) rows {rows}: max abs diff {err:.3e} (max |y| {scale:.2})");
            assert!(
                err <= 0.02 * scale,
                "{name} rows {rows}: qmatmul differs by {err} (max |y| {scale})"
            );
            // rank 3 and a strided view (a narrowed row of a bigger tensor)
            let x3 = x.reshape([1, rows, k]).unwrap();
            let q3 = x3.qmatmul(&w).unwrap().to_vec::<f32>().unwrap();
            assert!(
                max_abs_diff(&q3, &r) <= 0.02 * scale,
                "{name}: rank-3 input"
            );
            let last = x3.narrow(1, rows - 1, 1).unwrap();
            let ql = last.qmatmul(&w).unwrap().to_vec::<f32>().unwrap();
            let n = info.shape[0];
            let rl = &r[(rows - 1) * n..];
            let e = max_abs_diff(&ql, rl);
            assert!(
                e <= 0.02 * scale,
                "{name}: narrowed (offset) input differs by {e}"
            );
        }
    }
}
