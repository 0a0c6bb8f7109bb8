//! RoPE scaling (Llama 3.1's llama3, linear, YaRN, dynamic NTK, GGUF's rope_freqs.weight) against
//! transformers: a tiny random Llama whose scaling changes 7 of its 8 frequencies, written with
//! its reference logits by scripts/make_rope_fixtures.py. Float32 on the cpu device (or
//! PLUMB_TEST_DEVICE).

mod common;

use common::*;
use plumb_core::{DType, Device};
use plumb_nn::convert::convert;
use plumb_nn::models::llama::{Llama, LlamaConfig};
use plumb_nn::models::rope::RopeScaling;
use plumb_nn::{open_weights, resolve_model, HfConfig, ModelFiles, WeightFile, Weights};

const TOL: f64 = 1e-4;

struct Fixture {
    ids: Vec<u32>,
    /// [position][vocab] per variant
    logits: serde_json::Value,
}

fn fixture_data() -> Fixture {
    let fx = fixture_json("llama_rope.json");
    Fixture {
        ids: fx["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect(),
        logits: fx["logits"].clone(),
    }
}

/// The folder's files with `config` (a file of the folder) as its config.json.
fn folder_with(config: &str) -> ModelFiles {
    let dir = fixture("llama_rope");
    let mut files = resolve_model(dir.to_str().unwrap()).unwrap();
    files.config = Some(dir.join(config));
    files
}

fn config_of(files: &ModelFiles, w: &Weights) -> plumb_core::Result<LlamaConfig> {
    match w.file() {
        WeightFile::Gguf(g) => LlamaConfig::from_gguf(g),
        WeightFile::Safetensors(_) => {
            LlamaConfig::from_hf(&HfConfig::load(files.config.as_ref().unwrap())?)
        }
    }
}

/// The worst logits error against the reference `variant` ([`worst_logits_error`], a prefill of 25).
fn worst_error(model: &Llama, fx: &Fixture, variant: &str, dev: &Device) -> f64 {
    let want = fx.logits[variant].as_array().unwrap();
    worst_logits_error(model, &fx.ids, want, 25, dev)
}

fn load(files: &ModelFiles, dev: &Device) -> (Llama, Weights) {
    let w = open_weights(files, dev, dev, Some(DType::F32)).unwrap();
    let c = config_of(files, &w).unwrap();
    let m = Llama::load(&c, &w).unwrap();
    (m, w)
}

#[test]
fn llama3_scaling_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    // as transformers 5 saves it (rope_parameters) and as Llama 3.1 hub checkpoints are written
    for config in ["config.json", "config_hub.json"] {
        let (m, _) = load(&folder_with(config), &dev);
        assert_eq!(
            m.config.rope_scaling,
            RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 32.0
            },
            "{config}"
        );
        assert_eq!(m.config.rope_theta, 10000.0, "{config}");
        let e = worst_error(&m, &fx, "llama3", &dev);
        println!(
            "llama3 ({config}) on {}: logits max abs error {e:.2e}",
            dev.id()
        );
        assert!(e < TOL, "{config}: logits max abs error {e}");
    }
}

#[test]
fn linear_scaling_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    let (m, _) = load(&folder_with("config_linear.json"), &dev);
    assert_eq!(m.config.rope_scaling, RopeScaling::Linear { factor: 4.0 });
    let e = worst_error(&m, &fx, "linear", &dev);
    println!("linear on {}: logits max abs error {e:.2e}", dev.id());
    assert!(e < TOL, "logits max abs error {e}");
}

/// YaRN from config.json: factor 4 over an original context of 32 (frequency 0 kept, 1 blended,
/// the rest divided; cos and sin times 1 + 0.1·ln 4), and DeepSeek's form (mscale over
/// mscale_all_dim, beta_fast 16, the ramp not rounded to whole dimensions).
#[test]
fn yarn_scaling_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    for (config, variant, attention) in [
        ("config_yarn.json", "yarn", 1.0 + 0.1 * 4f64.ln()),
        (
            "config_yarn_mscale.json",
            "yarn_mscale",
            (1.0 + 0.0707 * 4f64.ln()) / (1.0 + 0.1 * 4f64.ln()),
        ),
    ] {
        let (m, _) = load(&folder_with(config), &dev);
        let RopeScaling::Yarn {
            factor,
            original_max_position_embeddings,
            attention_factor,
            ..
        } = m.config.rope_scaling
        else {
            panic!("{config}: read as {:?}", m.config.rope_scaling);
        };
        assert_eq!((factor, original_max_position_embeddings), (4.0, 32.0));
        assert!((attention_factor - attention).abs() < 1e-12, "{config}");
        let e = worst_error(&m, &fx, variant, &dev);
        println!(
            "{variant} ({config}) on {}: logits max abs error {e:.2e}",
            dev.id()
        );
        assert!(e < TOL, "{config}: logits max abs error {e}");
    }
}

/// Dynamic NTK (max_position_embeddings 16, factor 2): one forward of all 40 positions uses the
/// frequencies of a 40-long sequence; a prefill of 25 then single steps recompute them for each
/// length, as a freshly loaded transformers model does (`dynamic_steps`).
#[test]
fn dynamic_ntk_matches_transformers() {
    use plumb_nn::models::llama::KvCache;
    let fx = fixture_data();
    let dev = test_device();
    let (m, _) = load(&folder_with("config_dynamic.json"), &dev);
    assert_eq!(
        m.config.rope_scaling,
        RopeScaling::Dynamic {
            factor: 2.0,
            max_position_embeddings: 16.0
        }
    );
    let v = m.config.vocab_size;
    let layers = m.config.num_hidden_layers;
    let rows = |k: &str| fx.logits[k].as_array().unwrap().clone();
    let mut cache = KvCache::new(layers);
    let all = m.forward(&fx.ids, &mut cache, &dev, true).unwrap();
    let all = all.to_vec::<f32>().unwrap();
    let mut worst = 0f64;
    for (p, want) in rows("dynamic").iter().enumerate() {
        worst = worst.max(max_abs_diff(&all[p * v..(p + 1) * v], &json_row(want)));
    }
    println!(
        "dynamic, one forward, on {}: logits max abs error {worst:.2e}",
        dev.id()
    );
    assert!(worst < TOL, "one forward: logits max abs error {worst}");
    let steps = rows("dynamic_steps");
    let prefill = fx.ids.len() - steps.len() + 1;
    let mut cache = KvCache::new(layers);
    let mut worst = 0f64;
    for (i, want) in steps.iter().enumerate() {
        let ids = if i == 0 {
            &fx.ids[..prefill]
        } else {
            &fx.ids[prefill + i - 1..prefill + i]
        };
        let got = m.forward(ids, &mut cache, &dev, false).unwrap();
        worst = worst.max(max_abs_diff(&got.to_vec::<f32>().unwrap(), &json_row(want)));
    }
    println!(
        "dynamic, prefill {prefill} + steps, on {}: logits max abs error {worst:.2e}",
        dev.id()
    );
    assert!(worst < TOL, "step by step: logits max abs error {worst}");
}

/// YaRN from GGUF metadata (llama.cpp's keys) on the GGUF layout, and through `plumb convert`
/// into a config.json that computes the same logits.
#[test]
fn gguf_yarn_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    let files = resolve_model(fixture("llama_rope_yarn.gguf").to_str().unwrap()).unwrap();
    let (m, _) = load(&files, &dev);
    assert!(
        matches!(m.config.rope_scaling, RopeScaling::Yarn { factor, .. } if factor == 4.0),
        "{:?}",
        m.config.rope_scaling
    );
    let e = worst_error(&m, &fx, "yarn", &dev);
    println!("yarn (gguf) on {}: logits max abs error {e:.2e}", dev.id());
    assert!(e < TOL, "logits max abs error {e}");
    let out = tempfile::tempdir().unwrap();
    convert(&files, DType::F32, out.path()).unwrap();
    let conv = resolve_model(out.path().to_str().unwrap()).unwrap();
    let cfg = HfConfig::load(conv.config.as_ref().unwrap()).unwrap();
    assert_eq!(
        cfg.json["rope_scaling"]["rope_type"], "yarn",
        "{}",
        cfg.json
    );
    let (m, _) = load(&conv, &dev);
    let e = worst_error(&m, &fx, "yarn", &dev);
    println!("yarn after convert gguf → safetensors: logits max abs error {e:.2e}");
    assert!(e < TOL, "logits max abs error {e}");
}

/// The same weights as llama.cpp writes them: interleaved Q/K rows and the llama3 scaling as
/// `rope_freqs.weight` divisors, which are read for RoPE and not loaded as a weight.
#[test]
fn gguf_rope_freqs_match_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    let files = resolve_model(fixture("llama_rope.gguf").to_str().unwrap()).unwrap();
    let (m, w) = load(&files, &dev);
    assert_eq!(m.config.rope_scaling, RopeScaling::Divisors { factor: 1.0 });
    let half = m.config.head_dim / 2;
    assert!(
        !w.loaded_shapes().iter().any(|(_, s)| s == &[half]),
        "rope_freqs.weight is not uploaded as a weight: {:?}",
        w.loaded_shapes()
    );
    let e = worst_error(&m, &fx, "llama3", &dev);
    println!(
        "llama3 via rope_freqs (gguf) on {}: logits max abs error {e:.2e}",
        dev.id()
    );
    assert!(e < TOL, "logits max abs error {e}");

    // linear scaling read from GGUF metadata, run on the GGUF layout
    let g = plumb_nn::gguf::GgufFile::open(fixture("rope_linear.gguf")).unwrap();
    let lin = LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!(lin.rope_scaling, RopeScaling::Linear { factor: 4.0 });
    let mut c = m.config.clone();
    c.rope_scaling = lin.rope_scaling;
    let m = Llama::load(&c, &w).unwrap();
    let e = worst_error(&m, &fx, "linear", &dev);
    println!(
        "linear (gguf layout) on {}: logits max abs error {e:.2e}",
        dev.id()
    );
    assert!(e < TOL, "logits max abs error {e}");
}

/// `plumb convert` of the GGUF writes the llama3 parameters back into config.json (recovered
/// from rope_freqs.weight), and the converted folder computes the same logits.
#[test]
fn convert_carries_rope_scaling() {
    let fx = fixture_data();
    let dev = test_device();
    let out = tempfile::tempdir().unwrap();
    let files = resolve_model(fixture("llama_rope.gguf").to_str().unwrap()).unwrap();
    convert(&files, DType::F32, out.path()).unwrap();
    let conv = resolve_model(out.path().to_str().unwrap()).unwrap();
    let cfg = HfConfig::load(conv.config.as_ref().unwrap()).unwrap();
    assert_eq!(
        cfg.json["rope_scaling"]["rope_type"], "llama3",
        "{}",
        cfg.json
    );
    let (m, _) = load(&conv, &dev);
    let e = worst_error(&m, &fx, "llama3", &dev);
    println!("llama3 after convert gguf → safetensors: logits max abs error {e:.2e}");
    assert!(e < TOL, "logits max abs error {e}");
}

#[test]
fn unsupported_rope_types_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("llama_rope/config_hub.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
    for (key, kind) in [("rope_type", "longrope"), ("type", "su")] {
        json["rope_scaling"] = serde_json::json!({key: kind, "factor": 4.0,
            "original_max_position_embeddings": 32});
        let p = dir.path().join("config.json");
        std::fs::write(&p, json.to_string()).unwrap();
        let e = LlamaConfig::from_hf(&HfConfig::load(&p).unwrap()).unwrap_err();
        assert_format_error(e, &p, &format!("'{kind}'"));
    }
    // YaRN with what plumb does not model (DeepSeek's log multiplier) is refused, not ignored
    let p = fixture("rope_yarn.gguf");
    let g = plumb_nn::gguf::GgufFile::open(&p).unwrap();
    assert_format_error(
        LlamaConfig::from_gguf(&g).unwrap_err(),
        &p,
        "yarn_log_multiplier is 0.1",
    );
    // partial rotary embeddings are refused rather than computed wrong
    let p = fixture("rope_partial.gguf");
    let g = plumb_nn::gguf::GgufFile::open(&p).unwrap();
    assert_format_error(
        LlamaConfig::from_gguf(&g).unwrap_err(),
        &p,
        "dimension_count is 8",
    );
}

/// `plumb check` traces a representative prefill whose token ids must fit the model's
/// vocabulary, however small (this one has 96 tokens; the trace once used ids from 100 up).
#[test]
fn plan_of_a_small_vocabulary_model() {
    let files = resolve_model(fixture("llama_rope.gguf").to_str().unwrap()).unwrap();
    let dev = test_device();
    let plan = plumb_nn::pipeline::plan_model(&files, &dev, None, false)
        .expect("a model with 96 tokens plans");
    assert!(!plan.plan.ops.is_empty(), "the trace recorded ops");
}
