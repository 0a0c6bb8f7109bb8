//! Every data-holding device computes what the CPU computes on the real test models: MiniLM
//! sentence embeddings and SmolLM2 (q4_1 GGUF) prefill logits, in f32.
//!
//! Devices: every one `plumb::devices()` finds besides `cpu` and `meta`, or the comma-separated
//! list in `PLUMB_AGREE_DEVICES`. `PLUMB_AGREE_MINILM` / `PLUMB_AGREE_LLM` point at other model
//! folders or files of the same families (a GPU machine without the test models can use models
//! with random weights and the real configs).

mod common;

use common::*;
use plumb_core::{DType, Device};
use plumb_nn::models::llama::KvCache;
use plumb_nn::pipeline::{load_model, Model};
use plumb_nn::resolve_model;

fn others() -> Vec<Device> {
    match std::env::var("PLUMB_AGREE_DEVICES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|s| plumb::device(s.trim()).expect("PLUMB_AGREE_DEVICES names a device"))
            .collect(),
        _ => plumb::devices()
            .unwrap()
            .into_iter()
            .filter(|d| d.holds_data() && d.id() != "cpu")
            .collect(),
    }
}

fn path(var: &str, default: fn() -> std::path::PathBuf) -> String {
    std::env::var(var).unwrap_or_else(|_| default().to_string_lossy().into_owned())
}

/// (device id, embeddings) of MiniLM on `dev`.
fn embed(dev: &Device, texts: &[&str]) -> Vec<Vec<f32>> {
    let files = resolve_model(&path("PLUMB_AGREE_MINILM", minilm_dir)).unwrap();
    let (m, _, _) = load_model(&files, dev, Some(DType::F32), false, None).unwrap();
    let Model::Embedder(e) = m else {
        panic!("not an embedding model")
    };
    e.embed(texts, 4, dev).unwrap()
}

/// Prefill logits (every position) of SmolLM2 on `dev`.
fn logits(dev: &Device) -> Vec<f32> {
    let files = resolve_model(&path("PLUMB_AGREE_LLM", smollm2_file)).unwrap();
    let (m, _, _) = load_model(&files, dev, Some(DType::F32), false, None).unwrap();
    let Model::Generator(g) = m else {
        panic!("not a generator")
    };
    let ids = g
        .tokenizer
        .encode(
            "The capital of France is Paris, and the capital of Spain",
            false,
        )
        .unwrap();
    let mut cache = KvCache::new(g.model.config.num_hidden_layers);
    g.model
        .forward(&ids, &mut cache, dev, true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
}

#[test]
fn minilm_embeddings_agree_with_the_cpu() {
    let devs = others();
    if devs.is_empty() {
        println!("skipped: no device besides the CPU on this machine");
        return;
    }
    let texts = [
        "",
        "a",
        "The quick brown fox jumps over the lazy dog.",
        "Plumb runs models on the best device a machine has, in a dtype that works there.",
        "short",
    ];
    let want = embed(&cpu(), &texts);
    for dev in devs {
        let got = embed(&dev, &texts);
        let worst = want
            .iter()
            .zip(&got)
            .map(|(a, b)| cosine(a, b))
            .fold(1.0f64, f64::min);
        println!(
            "MiniLM f32 on {}: worst cosine to the cpu {worst:.8}",
            dev.id()
        );
        assert!(worst >= 0.99999, "{}: cosine {worst}", dev.id());
    }
}

#[test]
fn smollm2_logits_agree_with_the_cpu() {
    let devs = others();
    if devs.is_empty() {
        println!("skipped: no device besides the CPU on this machine");
        return;
    }
    let want = logits(&cpu());
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs())) as f64;
    for dev in devs {
        let got = logits(&dev);
        assert_eq!(got.len(), want.len(), "{}", dev.id());
        let err = max_abs_diff(&got, &want);
        println!(
            "SmolLM2 q4_1 prefill logits on {}: max abs diff to the cpu {err:.2e} (largest |logit| {scale:.1})",
            dev.id()
        );
        assert!(err <= 2e-3 * scale, "{}: max abs diff {err}", dev.id());
    }
}
