//! Shared helpers of plumb-nn's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

/// The model cache of scripts/fetch_models.sh: $PLUMB_MODELS, else <repo>/target/models.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("PLUMB_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
    }
}

/// A file or folder of the model cache; fails the test (never skips) when it is missing.
pub fn model_path(rel: &str) -> PathBuf {
    let p = models_dir().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch_models.sh first (it fetches the test models into \
         $PLUMB_MODELS or target/models)",
        p.display()
    );
    p
}

pub fn minilm_dir() -> PathBuf {
    model_path("all-MiniLM-L6-v2")
}

pub fn smollm2_file() -> PathBuf {
    model_path("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    let p = fixture(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with scripts/make_fixtures.py)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

pub fn cpu() -> plumb_core::Device {
    plumb_core::Device::new(Arc::new(plumb_cpu::CpuBackend::new())).unwrap()
}

/// The device the reference-fixture tests run on: `PLUMB_TEST_DEVICE` (e.g. `cuda:0` on a GPU
/// machine), else the CPU. Other devices are checked against the CPU in devices_agree.rs.
pub fn test_device() -> plumb_core::Device {
    match std::env::var("PLUMB_TEST_DEVICE") {
        Ok(d) if !d.trim().is_empty() && d.trim() != "cpu" => {
            plumb::device(d.trim()).expect("PLUMB_TEST_DEVICE names a device on this machine")
        }
        _ => cpu(),
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        d += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    d / (na.sqrt() * nb.sqrt()).max(1e-30)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
}

/// A JSON array of numbers as f32 values.
pub fn json_row(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A Llama's logits for `ids` against reference rows `want` ([position][vocab]): every position
/// at once, then again with the KV cache (a prefill of `prefill`, then one token at a time, so
/// later positions take RoPE from an offset and attend over the cache); the worst abs error.
pub fn worst_logits_error(
    model: &plumb_nn::models::llama::Llama,
    ids: &[u32],
    want: &[serde_json::Value],
    prefill: usize,
    dev: &plumb_core::Device,
) -> f64 {
    use plumb_nn::models::llama::KvCache;
    let n = ids.len();
    assert_eq!(want.len(), n);
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let all = model
        .forward(ids, &mut cache, dev, true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let v = model.config.vocab_size;
    let mut worst = 0f64;
    for (p, w) in want.iter().enumerate() {
        worst = worst.max(max_abs_diff(&all[p * v..(p + 1) * v], &json_row(w)));
    }
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let mut last = model.forward(&ids[..prefill], &mut cache, dev, false);
    for p in prefill..=n {
        let got = last.unwrap().to_vec::<f32>().unwrap();
        worst = worst.max(max_abs_diff(&got, &json_row(&want[p - 1])));
        if p == n {
            break;
        }
        last = model.forward(&ids[p..p + 1], &mut cache, dev, false);
    }
    worst
}

/// `e` is a format error about `path` whose message names the path and contains `what`.
pub fn assert_format_error(e: plumb_core::Error, path: &std::path::Path, what: &str) {
    let msg = e.to_string();
    match &e {
        plumb_core::Error::Format { path: p, .. } => assert_eq!(p, path, "{msg}"),
        other => panic!("expected a format error, got {other:?}"),
    }
    assert!(msg.contains(what), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}
