//! all-MiniLM-L6-v2 against sentence-transformers (float32, CPU) on the cpu device, or on
//! `PLUMB_TEST_DEVICE`.

mod common;

use common::*;
use plumb_core::DType;
use plumb_nn::models::bert::Embedder;
use plumb_nn::{open_weights, resolve_model};

fn check(dtype: DType, min_cos: f64) {
    let fx = fixture_json("minilm.json");
    let dev = test_device();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let w = open_weights(&files, &dev, &dev, Some(dtype)).unwrap();
    let emb = Embedder::load(&files, &w).unwrap();
    w.finish();
    assert_eq!(
        emb.sentence.max_seq_length,
        fx["max_seq_length"].as_u64().unwrap() as usize
    );
    let items = fx["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    // batches of 4 mix lengths, so padding and the attention mask matter
    let got = emb.embed(&texts, 4, &dev).unwrap();
    let mut worst = (1.0f64, 0.0f64);
    for (it, g) in items.iter().zip(&got) {
        let want: Vec<f32> = it["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let c = cosine(g, &want);
        let e = max_abs_diff(g, &want);
        worst = (worst.0.min(c), worst.1.max(e));
        assert!(
            c >= min_cos,
            "{dtype}: cosine {c} < {min_cos} for {:?}",
            it["text"].as_str().unwrap()
        );
    }
    println!(
        "MiniLM {dtype} on {}: worst cosine {:.7}, max abs error {:.2e} over {} sentences",
        dev.id(),
        worst.0,
        worst.1,
        items.len()
    );
}

#[test]
fn minilm_f32_matches_sentence_transformers() {
    check(DType::F32, 0.9999);
}

#[test]
fn minilm_f16_matches_sentence_transformers() {
    check(DType::F16, 0.999);
}

#[test]
fn minilm_position_ids_are_loaded_and_noted_when_narrowed() {
    let dev = cpu();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let w = open_weights(&files, &dev, &dev, None).unwrap();
    assert_eq!(w.float_dtype(), DType::F32);
    let t = w.get("embeddings.position_ids", &[1, 512]).unwrap();
    assert!(matches!(t.dtype(), DType::I64 | DType::I32));
    let v = t.to_f64_vec().unwrap();
    assert_eq!(v[511], 511.0);
}
