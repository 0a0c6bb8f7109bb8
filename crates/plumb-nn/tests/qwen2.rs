//! Qwen2 (the Llama architecture with q/k/v projection biases) and a Llama with
//! `attention_bias` (biases on q, k, v and o) against transformers: tiny random models whose
//! biases move the logits by several units, written with their reference logits by
//! scripts/make_qwen2_fixtures.py, as safetensors and as the GGUF files llama.cpp's gguf-py
//! writes (Qwen2's Q/K rows not permuted, a Llama's permuted). On the cpu device (or
//! PLUMB_TEST_DEVICE).

mod common;

use common::*;
use plumb_core::{DType, Device};
use plumb_nn::convert::convert;
use plumb_nn::generate::{argmax, Sampler, SamplingParams, Stop, TextGenerator};
use plumb_nn::models::llama::{Llama, LlamaArch, LlamaConfig};
use plumb_nn::{open_weights, resolve_model, HfConfig, ModelFiles, WeightFile, Weights};
use serde_json::{json, Value};
use std::path::Path;

/// Float32 compute against float32 transformers, as in llama_rope.rs.
const TOL: f64 = 1e-4;
/// Q8_0 weights through the quantized matmul, which quantizes activations too (16-bit blocks
/// on AVX2/AVX-512 CPUs: 9e-5 measured here), against the same dequantized weights in float32.
/// Zeroing the biases moves the logits by 3.1 (qwen2.json, max_abs_logit_change).
const QTOL: f64 = 2e-3;

struct Fixture {
    ids: Vec<u32>,
    /// a text and its ids from the `tokenizers` library
    text: String,
    text_ids: Vec<u32>,
    /// [position][vocab] per variant
    logits: Value,
}

fn fixture_data() -> Fixture {
    let fx = fixture_json("qwen2.json");
    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    Fixture {
        ids: ids(&fx["ids"]),
        text: fx["tokenized"]["text"].as_str().unwrap().to_string(),
        text_ids: ids(&fx["tokenized"]["ids"]),
        logits: fx["logits"].clone(),
    }
}

fn files_of(path: &Path) -> ModelFiles {
    resolve_model(path.to_str().unwrap()).unwrap()
}

/// The qwen2 folder with `config` (a file of the folder) as its config.json.
fn folder_with(config: &str) -> ModelFiles {
    let dir = fixture("qwen2");
    let mut files = files_of(&dir);
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

/// The model computing in f32, quantized matrices kept quantized unless `dequantize`.
fn load(files: &ModelFiles, dev: &Device, dequantize: bool) -> (Llama, Weights) {
    let mut w = open_weights(files, dev, dev, Some(DType::F32)).unwrap();
    w.set_dequantize(dequantize);
    let c = config_of(files, &w).unwrap();
    let m = Llama::load(&c, &w).unwrap();
    (m, w)
}

/// The worst logits error against the reference `variant` ([`worst_logits_error`], a prefill of 16).
fn worst_error(model: &Llama, fx: &Fixture, variant: &str, dev: &Device) -> f64 {
    let want = fx.logits[variant].as_array().unwrap();
    worst_logits_error(model, &fx.ids, want, 16, dev)
}

fn assert_qwen2_config(c: &LlamaConfig, what: &str) {
    assert_eq!(c.arch, LlamaArch::Qwen2, "{what}");
    assert!(c.attention_bias, "{what}");
    assert!(c.tie_word_embeddings, "{what}");
    assert_eq!(c.rope_theta, 1e6, "{what}");
    assert!((c.rms_norm_eps - 1e-6).abs() < 1e-12, "{what}");
    assert_eq!(
        (c.num_attention_heads, c.num_key_value_heads, c.head_dim),
        (4, 2, 16),
        "{what}"
    );
}

/// bf16 safetensors as transformers 5 saves them and with a Qwen2.5 hub-style config (whose
/// `sliding_window` is shorter than the context but off: `use_sliding_window: false`).
#[test]
fn safetensors_match_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    for config in ["config.json", "config_hub.json"] {
        let (m, _) = load(&folder_with(config), &dev, false);
        assert_qwen2_config(&m.config, config);
        let e = worst_error(&m, &fx, "qwen2", &dev);
        println!(
            "qwen2 safetensors ({config}) on {}: max abs error {e:.2e}",
            dev.id()
        );
        assert!(e < TOL, "{config}: logits max abs error {e}");
    }
}

/// The same weights as a float32 qwen2 GGUF: Q/K rows as Hugging Face stores them, so RoPE
/// rotates halves (reading them interleaved, as a llama GGUF, moves the logits by 0.63).
#[test]
fn gguf_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    let (m, _) = load(&files_of(&fixture("qwen2_f32.gguf")), &dev, false);
    assert_qwen2_config(&m.config, "qwen2_f32.gguf");
    let e = worst_error(&m, &fx, "qwen2", &dev);
    println!("qwen2 gguf f32 on {}: max abs error {e:.2e}", dev.id());
    assert!(e < TOL, "logits max abs error {e}");
}

/// Q8_0 matrices with f32 biases: stacked q/k/v kept quantized (one quantized matmul, then the
/// stacked bias), and dequantized to f32 (one float matmul with the bias fused). The reference
/// is transformers on the file's dequantized matrices.
#[test]
fn gguf_q8_0_with_f32_biases_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    let files = files_of(&fixture("qwen2_q8_0.gguf"));
    let (m, w) = load(&files, &dev, true);
    assert!(!w.loaded_shapes().iter().any(|(d, _)| d.is_quantized()));
    let e = worst_error(&m, &fx, "qwen2_q8_0", &dev);
    println!(
        "qwen2 q8_0 dequantized on {}: max abs error {e:.2e}",
        dev.id()
    );
    assert!(e < TOL, "dequantized: logits max abs error {e}");

    let (m, w) = load(&files, &dev, false);
    let shapes = w.loaded_shapes();
    // q, k and v of a layer stacked into one [64 + 32 + 32, 64] quantized matrix; its bias f32
    assert!(
        shapes.contains(&(DType::Q8_0, vec![128, 64])),
        "stacked quantized q/k/v: {shapes:?}"
    );
    assert!(shapes.contains(&(DType::F32, vec![64])), "{shapes:?}");
    let e = worst_error(&m, &fx, "qwen2_q8_0", &dev);
    println!(
        "qwen2 q8_0 quantized matmul on {}: max abs error {e:.2e}",
        dev.id()
    );
    assert!(e < QTOL, "quantized: logits max abs error {e}");
}

/// A Llama config with `attention_bias: true`: biases on q, k, v and o (zeroing o's alone moves
/// the logits by 1.6), from safetensors and from a llama GGUF whose Q/K rows and bias entries
/// llama.cpp permuted for its interleaved RoPE.
#[test]
fn llama_with_attention_bias_matches_transformers() {
    let fx = fixture_data();
    let dev = test_device();
    for path in [fixture("llama_bias"), fixture("llama_bias.gguf")] {
        let (m, _) = load(&files_of(&path), &dev, false);
        assert_eq!(m.config.arch, LlamaArch::Llama);
        assert!(m.config.attention_bias, "{}", path.display());
        let e = worst_error(&m, &fx, "llama_bias", &dev);
        println!(
            "llama with biases ({}): max abs error {e:.2e}",
            path.display()
        );
        assert!(e < TOL, "{}: logits max abs error {e}", path.display());
    }
}

/// What `plumb check` and `plumb generate` do: plan on the meta device, load with the model's
/// tokenizer (tokenizer.json in the folder; the GGUF's own byte-level vocabulary with the qwen2
/// split), and pick the reference's argmax after the prompt.
#[test]
fn plan_and_generate() {
    let fx = fixture_data();
    let dev = test_device();
    let want = argmax(&json_row(
        fx.logits["qwen2"].as_array().unwrap().last().unwrap(),
    )) as u32;
    for path in [fixture("qwen2"), fixture("qwen2_f32.gguf")] {
        let files = files_of(&path);
        let plan = plumb_nn::pipeline::plan_model(&files, &dev, Some(DType::F32), false).unwrap();
        plan.plan.check().unwrap();
        assert_eq!(plan.architecture, "Qwen2", "{}", path.display());
        // the stacked q/k/v projection runs as one linear op with its bias
        assert!(
            plan.plan.ops.iter().any(|o| o.op == "linear"),
            "{}: {:?}",
            path.display(),
            plan.plan.ops.iter().map(|o| &o.op).collect::<Vec<_>>()
        );
        let w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
        let g = TextGenerator::load(&files, &w).unwrap();
        assert_eq!(g.model.config.arch, LlamaArch::Qwen2);
        let mut got = Vec::new();
        let mut sampler = Sampler::new(SamplingParams::default()).unwrap();
        g.generate(&fx.ids, 1, &mut sampler, false, &dev, &mut |t| {
            got.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [want], "{}", path.display());
        // the stand-in vocabulary encodes as the `tokenizers` library does
        let ids = g.tokenizer.encode(&fx.text, false).unwrap();
        assert_eq!(ids, fx.text_ids, "{}", path.display());
        // generation stops at <|endoftext|>, Qwen2 base models' end of text (the GGUF names it
        // its eos; the folder's tokenizer.json does not say)
        let end = g.tokenizer.inner().token_to_id("<|endoftext|>").unwrap();
        assert!(g.tokenizer.is_eos(end), "{}", path.display());
    }
}

/// The fixture's context is 128 positions (`max_position_embeddings`): a longer prompt is an
/// error that gives both lengths, and generation after a 120-token prompt stops where the
/// context is full, saying so, before the tokens asked for.
#[test]
fn generation_stops_where_the_context_is_full() {
    let fx = fixture_data();
    let dev = test_device();
    let files = files_of(&fixture("qwen2"));
    let w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
    let g = TextGenerator::load(&files, &w).unwrap();
    assert_eq!(g.model.context_limit(), Some(128));
    let prompt = |n: usize| fx.ids.iter().copied().cycle().take(n).collect::<Vec<u32>>();
    let run = |ids: &[u32], max: usize| {
        let mut sampler = Sampler::new(SamplingParams::default()).unwrap();
        g.generate(ids, max, &mut sampler, false, &dev, &mut |_| Ok(()))
    };
    let e = run(&prompt(129), 4).unwrap_err().to_string();
    assert!(
        e.contains("129 tokens") && e.contains("128 positions"),
        "{e}"
    );
    // 120 positions of prompt, then 8 generated tokens fed back: the 9th is the last
    let st = run(&prompt(120), 50).unwrap();
    assert_eq!((st.generated, st.stop), (9, Stop::ContextFull));
    let st = run(&prompt(120), 5).unwrap();
    assert_eq!((st.generated, st.stop), (5, Stop::MaxTokens));
    // a prompt that fills the context exactly still gives its one next token
    let st = run(&prompt(128), 5).unwrap();
    assert_eq!((st.generated, st.stop), (1, Stop::ContextFull));
}

/// `plumb convert`: a GGUF becomes a Hugging Face folder with its biases (a qwen2 file's Q/K
/// rows as they were, a llama file's un-permuted, its o bias kept), the bf16 folder an f32 one;
/// each computes the reference logits.
#[test]
fn convert_carries_the_biases() {
    let fx = fixture_data();
    let dev = test_device();
    let cases = [
        (
            fixture("qwen2_f32.gguf"),
            "qwen2",
            ["q", "k", "v"].as_slice(),
        ),
        (fixture("qwen2"), "qwen2", &["q", "k", "v"]),
        (
            fixture("llama_bias.gguf"),
            "llama_bias",
            &["q", "k", "v", "o"],
        ),
    ];
    for (src, variant, biased) in cases {
        let out = tempfile::tempdir().unwrap();
        convert(&files_of(&src), DType::F32, out.path()).unwrap();
        let conv = files_of(out.path());
        let cfg = HfConfig::load(conv.config.as_ref().unwrap()).unwrap();
        let layer = match variant {
            "qwen2" => {
                assert_eq!(cfg.model_type(), "qwen2", "{}", cfg.json);
                1
            }
            _ => {
                assert_eq!(cfg.json["attention_bias"], json!(true), "{}", cfg.json);
                0
            }
        };
        let st = plumb_nn::safetensors::SafetensorsFile::open(&conv.weights).unwrap();
        for p in biased {
            let name = format!("model.layers.{layer}.self_attn.{p}_proj.bias");
            assert!(st.get(&name).is_some(), "{}: {name}", src.display());
        }
        let (m, _) = load(&conv, &dev, false);
        let e = worst_error(&m, &fx, variant, &dev);
        println!(
            "{variant} after convert of {}: max abs error {e:.2e}",
            src.display()
        );
        assert!(e < TOL, "{}: logits max abs error {e}", src.display());
    }
}

/// A sliding window shorter than the context is refused where transformers would apply it:
/// `use_sliding_window: true` and a layer from `max_window_layers` on (or marked
/// `sliding_attention` in `layer_types`); with the switch off, or every layer below
/// `max_window_layers`, the model loads.
#[test]
fn sliding_window_configs() {
    let dir = tempfile::tempdir().unwrap();
    let hub: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("qwen2/config_hub.json")).unwrap())
            .unwrap();
    let cases = [
        (
            json!({"use_sliding_window": true, "sliding_window": 16, "max_window_layers": 0}),
            true,
        ),
        (
            json!({"use_sliding_window": true, "sliding_window": 16, "max_window_layers": 1}),
            true,
        ),
        (
            json!({"use_sliding_window": true, "sliding_window": 16,
                   "layer_types": ["full_attention", "sliding_attention"]}),
            true,
        ),
        (
            json!({"use_sliding_window": true, "sliding_window": 16, "max_window_layers": 2}),
            false,
        ),
        (
            json!({"use_sliding_window": true, "sliding_window": 16,
                   "layer_types": ["full_attention", "full_attention"]}),
            false,
        ),
        (
            json!({"use_sliding_window": true, "sliding_window": 128, "max_window_layers": 0}),
            false,
        ),
        (
            json!({"use_sliding_window": false, "sliding_window": 16, "max_window_layers": 0}),
            false,
        ),
        (json!({"sliding_window": 16, "max_window_layers": 0}), false),
    ];
    for (i, (patch, refused)) in cases.into_iter().enumerate() {
        let mut json = hub.clone();
        for (k, v) in patch.as_object().unwrap() {
            json[k] = v.clone();
        }
        let p = dir.path().join(format!("config{i}.json"));
        std::fs::write(&p, json.to_string()).unwrap();
        let got = LlamaConfig::from_hf(&HfConfig::load(&p).unwrap());
        match (got, refused) {
            (Err(e), true) => assert_format_error(e, &p, "use_sliding_window is true"),
            (Ok(_), false) => {}
            (got, _) => panic!("{patch}: {:?}", got.map(|c| c.arch)),
        }
    }
    // the pipeline refuses before loading weights: `plumb generate` names the file
    let model = tempfile::tempdir().unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("qwen2").join(f), model.path().join(f)).unwrap();
    }
    let mut json = hub;
    json["use_sliding_window"] = json!(true);
    json["sliding_window"] = json!(16);
    json["max_window_layers"] = json!(0);
    let p = model.path().join("config.json");
    std::fs::write(&p, json.to_string()).unwrap();
    let dev = cpu();
    let e = plumb_nn::pipeline::load_model(&files_of(model.path()), &dev, None, false, None)
        .err()
        .expect("a sliding window is refused");
    assert_format_error(e, &p, "sliding_window 16");
}

/// A Qwen2 checkpoint without one of its q/k/v biases is an error naming the file and the
/// tensor, not a model that silently computes without it.
#[test]
fn a_missing_bias_is_an_error() {
    let src = std::fs::read(fixture("qwen2/model.safetensors")).unwrap();
    let n = u64::from_le_bytes(src[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&src[8..8 + n]).unwrap();
    let name = "model.layers.1.self_attn.k_proj.bias";
    assert!(header.contains(name));
    // the same data under another name
    let header = header.replace(name, "model.layers.1.self_attn.k_proj.bias_renamed");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture("qwen2").join(f), dir.path().join(f)).unwrap();
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(&src[8 + n..]);
    let st = dir.path().join("model.safetensors");
    std::fs::write(&st, bytes).unwrap();
    let dev = cpu();
    let e = plumb_nn::pipeline::load_model(&files_of(dir.path()), &dev, None, false, None)
        .err()
        .expect("a missing bias is refused");
    assert_format_error(e, &st, name);
}
