//! GGUF block formats Plumb has no dtype for, requantized at load: a tiny random Llama whose
//! attention matrices are Q5_0 and MLP matrices Q5_1 (scripts/make_blockq_fixtures.py, from the
//! weights of llama_rope.gguf). Its logits with the requantized q8_0 weights must match the same
//! file dequantized to f32 (no requantization), and the load report must say what was converted.
//! Q4_K / Q5_K / Q6_K requantization is checked block by block in `kquant.rs`.

mod common;

use common::*;
use plumb_core::DType;
use plumb_nn::models::llama::{KvCache, Llama, LlamaConfig};
use plumb_nn::{open_weights, resolve_model, WeightFile};

/// Every position's logits for the rope fixture's 40 token ids, and the run's conversion notes.
fn logits(dequantize: bool) -> (Vec<f32>, Vec<String>) {
    let dev = test_device();
    let files = resolve_model(fixture("llama_q5.gguf").to_str().unwrap()).unwrap();
    let mut w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
    w.set_dequantize(dequantize);
    let WeightFile::Gguf(g) = w.file() else {
        panic!("a GGUF fixture")
    };
    let c = LlamaConfig::from_gguf(g).unwrap();
    let m = Llama::load(&c, &w).unwrap();
    w.finish();
    let ids: Vec<u32> = fixture_json("llama_rope.json")["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let mut cache = KvCache::new(m.config.num_hidden_layers);
    let out = m.forward(&ids, &mut cache, &dev, true).unwrap();
    (out.to_vec::<f32>().unwrap(), dev.report().conversions)
}

#[test]
fn q5_matrices_run_requantized_as_they_decode() {
    let (exact, notes_exact) = logits(true);
    let (requant, notes) = logits(false);
    for (from, n) in [("q5_0 → q8_0", 8), ("q5_1 → q8_0", 6)] {
        assert!(
            notes.iter().any(|c| c.contains(from)
                && c.contains("requantized at load")
                && c.contains(&format!("{n} tensors"))),
            "{from} for {n} tensors in the report: {notes:?}"
        );
    }
    assert!(
        notes_exact.iter().any(|c| c.contains("q5_0 → f32")),
        "dequantized when asked: {notes_exact:?}"
    );
    let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let err = max_abs_diff(&requant, &exact);
    println!(
        "llama_q5.gguf: requantized (q8_0, device activations) vs dequantized f32 logits: max abs \
         error {err:.2e} of max |logit| {scale:.2}"
    );
    // Q5_0 → q8_0 is exact and Q5_1 → q8_0 within half an 8-bit step; the rest is the q8_0
    // matmul's own activation rounding
    assert!(err < 2e-2 * scale, "max abs error {err} of {scale}");
    assert!(err > 0.0, "the requantized run is a different computation");
}
