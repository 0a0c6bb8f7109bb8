//! SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers (float32, CPU) on the cpu device:
//! greedy tokens identical for the first 32 steps; logits error reported.

mod common;

use common::*;
use plumb_core::DType;
use plumb_nn::generate::{argmax, Sampler, SamplingParams, TextGenerator};
use plumb_nn::models::llama::KvCache;
use plumb_nn::{open_weights, resolve_model};

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Exact f32: every weight dequantized on load, as transformers does with a GGUF file.
#[test]
fn smollm2_greedy_matches_transformers_f32() {
    let fx = fixture_json("smollm2.json");
    let dev = test_device();
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    let mut w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
    w.set_dequantize(true);
    let g = TextGenerator::load(&files, &w).unwrap();
    w.finish();
    let report = dev.report();
    assert!(
        report.conversions.iter().any(|c| c.contains("q8_0 → f32")),
        "the tied embedding table's dequantization is reported: {report}"
    );
    let mut worst = 0f64;
    let mut worst_top1_gap = 0f64;
    for run in fx["runs"].as_array().unwrap() {
        let prompt = run["prompt"].as_str().unwrap();
        let chat = run["chat"].as_bool().unwrap();
        let pids = g.prompt_ids(prompt, chat).unwrap();
        assert_eq!(pids, ids(&run["prompt_ids"]), "{prompt:?}");
        let want = ids(&run["greedy_ids"]);
        let steps = run["steps"].as_array().unwrap();
        // step by step with the KV cache, comparing top-k logits of the reference
        let mut cache = KvCache::new(g.model.config.num_hidden_layers);
        let mut logits = g.model.forward(&pids, &mut cache, &dev, false).unwrap();
        let mut got = Vec::new();
        for (i, st) in steps.iter().enumerate().take(32) {
            let l = logits.to_vec::<f32>().unwrap();
            for (id, v) in ids(&st["top_ids"])
                .iter()
                .zip(st["top_logits"].as_array().unwrap())
            {
                let e = (l[*id as usize] as f64 - v.as_f64().unwrap()).abs();
                worst = worst.max(e);
                if i == 0 {
                    worst_top1_gap = worst_top1_gap.max(e);
                }
            }
            let next = argmax(&l) as u32;
            got.push(next);
            logits = g.model.forward(&[next], &mut cache, &dev, false).unwrap();
        }
        assert_eq!(
            got,
            want[..32].to_vec(),
            "greedy tokens of {prompt:?} (chat {chat})"
        );
    }
    println!(
        "SmolLM2 f32 on {}: greedy tokens identical for 32 steps x 4 prompts; top-10 logits max abs error {worst:.2e} (first step {worst_top1_gap:.2e})",
        dev.id()
    );
    assert!(worst < 0.05, "logits max abs error {worst}");
}

/// Quantized weights through the device's quantized matmul (the default): not the same
/// computation as the reference (the CPU backend quantizes activations to 8 bits, like
/// llama.cpp), so near-ties may flip; the logits error and token agreement are reported, and the
/// first step's top-10 logits must stay close.
#[test]
fn smollm2_quantized_weights_logits_error() {
    let fx = fixture_json("smollm2.json");
    let dev = cpu();
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    let w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
    let g = TextGenerator::load(&files, &w).unwrap();
    let mut first_err = 0f64;
    let mut agree = 0;
    let mut total = 0;
    for run in fx["runs"].as_array().unwrap() {
        let pids = ids(&run["prompt_ids"]);
        let want = ids(&run["greedy_ids"]);
        let mut cache = KvCache::new(g.model.config.num_hidden_layers);
        let l = g.model.forward(&pids, &mut cache, &dev, false).unwrap();
        let l = l.to_vec::<f32>().unwrap();
        let st = &run["steps"][0];
        for (id, v) in ids(&st["top_ids"])
            .iter()
            .zip(st["top_logits"].as_array().unwrap())
        {
            first_err = first_err.max((l[*id as usize] as f64 - v.as_f64().unwrap()).abs());
        }
        // teacher-forced: feed the reference tokens, count where our argmax agrees
        let mut next = argmax(&l) as u32;
        for (i, &t) in want.iter().enumerate().take(32) {
            agree += (next == t) as usize;
            total += 1;
            if i + 1 < 32 {
                let l = g.model.forward(&[t], &mut cache, &dev, false).unwrap();
                next = argmax(&l.to_vec::<f32>().unwrap()) as u32;
            }
        }
    }
    println!(
        "SmolLM2 q4_1/q8_0 weights (quantized matmul) on cpu: first-step top-10 logits max abs error {first_err:.3e}; teacher-forced greedy agreement {agree}/{total}"
    );
    assert!(first_err < 0.5, "first-step logits error {first_err}");
    assert!(agree * 10 >= total * 8, "agreement {agree}/{total}");
}

/// SmolLM2 in f32 on the cpu, and 300 token ids spread over its vocabulary.
fn smollm2_and_300_tokens() -> (plumb_core::Device, TextGenerator, Vec<u32>) {
    let dev = cpu();
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    let w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
    let g = TextGenerator::load(&files, &w).unwrap();
    let vocab = g.model.config.vocab_size as u32;
    let toks = (0..300u32).map(|i| (i * 7919 + 13) % vocab).collect();
    (dev, g, toks)
}

/// The KV cache across its growth (256 positions, then doubled): 300 tokens run in one pass,
/// in chunks of 100 (the third chunk grows the cache), and as 290 + ten single steps give the
/// same last-position logits within float reassociation (the paths differ: many-row vs
/// few-row quantized matmul and attention kernels).
#[test]
fn smollm2_kv_cache_growth_matches_one_pass() {
    let (dev, g, toks) = smollm2_and_300_tokens();
    let layers = g.model.config.num_hidden_layers;
    let last = |l: plumb_core::Tensor| l.to_vec::<f32>().unwrap();
    let mut cache = KvCache::new(layers);
    let one = last(g.model.forward(&toks, &mut cache, &dev, false).unwrap());
    assert_eq!(cache.len, 300);
    let mut cache = KvCache::new(layers);
    let mut chunks = Vec::new();
    for c in toks.chunks(100) {
        chunks = last(g.model.forward(c, &mut cache, &dev, false).unwrap());
    }
    let mut cache = KvCache::new(layers);
    let mut steps = last(
        g.model
            .forward(&toks[..290], &mut cache, &dev, false)
            .unwrap(),
    );
    for &t in &toks[290..] {
        steps = last(g.model.forward(&[t], &mut cache, &dev, false).unwrap());
    }
    assert_eq!(cache.len, 300);
    let scale = one.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (name, other) in [("chunks of 100", &chunks), ("290 + 10 steps", &steps)] {
        let diff = one
            .iter()
            .zip(other)
            .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        println!(
            "KV cache, {name} vs one pass: logits max abs diff {diff:.2e} (max |logit| {scale:.1})"
        );
        assert!(
            diff <= 1e-3 * scale,
            "{name}: {diff} vs one pass (max |logit| {scale})"
        );
        assert_eq!(argmax(&one), argmax(other), "{name}: argmax");
    }
}

/// A KV cache kept in f16 or bf16 under f32 activations: half the bytes of the f32 cache, and
/// after 290 prompt tokens (the many-row attention path, which widens the cache) and ten single
/// steps (on the CPU the split over the long cache, which widens each key as it reads it) the
/// last logits stay within
/// the rounding of the cached keys and values of the f32 cache's, with the same argmax.
#[test]
fn smollm2_kv_cache_in_half_precision() {
    let (dev, g, toks) = smollm2_and_300_tokens();
    let layers = g.model.config.num_hidden_layers;
    let run = |kv: Option<DType>| {
        let mut cache = KvCache::with_dtype(layers, kv).unwrap();
        g.model
            .forward(&toks[..290], &mut cache, &dev, false)
            .unwrap();
        let mut last = Vec::new();
        for &t in &toks[290..] {
            last = g
                .model
                .forward(&[t], &mut cache, &dev, false)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
        }
        assert_eq!((cache.len, cache.dtype()), (300, kv));
        (last, cache.bytes())
    };
    let (full, full_bytes) = run(None);
    let scale = full.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (kv, tol) in [(DType::F16, 2e-3), (DType::BF16, 1e-2)] {
        let (half, bytes) = run(Some(kv));
        assert_eq!(2 * bytes, full_bytes, "{kv} cache bytes");
        let diff = full
            .iter()
            .zip(&half)
            .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        println!(
            "KV cache in {kv} vs f32: logits max abs diff {diff:.2e} (max |logit| {scale:.1})"
        );
        assert!(
            diff <= tol * scale,
            "{kv} cache: {diff} (max |logit| {scale})"
        );
        assert!(diff > 0.0, "{kv} cache: the keys were not rounded");
        assert_eq!(argmax(&full), argmax(&half), "{kv} cache: argmax");
    }
    let err = KvCache::with_dtype(layers, Some(DType::I32))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("kv cache") && err.contains("i32"), "{err}");
}

#[test]
fn smollm2_generate_loop_and_sampling() {
    let fx = fixture_json("smollm2.json");
    let dev = cpu();
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    let mut w = open_weights(&files, &dev, &dev, None).unwrap();
    w.set_dequantize(true);
    let g = TextGenerator::load(&files, &w).unwrap();
    let run = &fx["runs"][0];
    let pids = g.prompt_ids(run["prompt"].as_str().unwrap(), true).unwrap();
    // the streaming loop gives the same greedy tokens and stops at <|im_end|>
    let mut out = Vec::new();
    let st = g
        .generate(
            &pids,
            20,
            &mut Sampler::new(SamplingParams::default()).unwrap(),
            true,
            &dev,
            &mut |t| {
                out.push(t);
                Ok(())
            },
        )
        .unwrap();
    let want = ids(&run["greedy_ids"]);
    assert_eq!(out, want[..out.len()].to_vec());
    assert!(
        g.tokenizer.is_eos(*out.last().unwrap()),
        "stops at end of turn"
    );
    assert_eq!(st.stop, plumb_nn::generate::Stop::EndOfTurn);
    assert_eq!(st.generated, out.len());
    assert_eq!(
        g.tokenizer.decode(&out, true).unwrap(),
        "The capital of France is Paris."
    );
    // sampling with a seed is reproducible and differs across seeds
    let sample = |seed| {
        let mut v = Vec::new();
        let p = SamplingParams {
            temperature: 1.0,
            top_k: Some(40),
            top_p: Some(0.95),
            seed,
        };
        g.generate(
            &pids,
            12,
            &mut Sampler::new(p).unwrap(),
            false,
            &dev,
            &mut |t| {
                v.push(t);
                Ok(())
            },
        )
        .unwrap();
        v
    };
    let (a, b, c) = (sample(1), sample(1), sample(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// A config whose head counts cannot describe a model is a format error naming the file and
/// what is wrong, before any weight is read (not a panic or a huge allocation later).
#[test]
fn impossible_llama_configs_are_format_errors() {
    use plumb_nn::config::HfConfig;
    use plumb_nn::models::llama::LlamaConfig;
    let good = serde_json::json!({
        "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2,
    });
    let path = std::path::PathBuf::from("/models/bad/config.json");
    let load = |patch: serde_json::Value| {
        let mut json = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            json[k] = v.clone();
        }
        LlamaConfig::from_hf(&HfConfig {
            path: path.clone(),
            json,
        })
    };
    assert!(load(serde_json::json!({})).is_ok());
    // q/k/v/o biases are read (tests/qwen2.rs runs such a model against transformers)
    assert!(load(serde_json::json!({"attention_bias": true})).is_ok_and(|c| c.attention_bias));
    for (patch, needle) in [
        (
            serde_json::json!({"num_key_value_heads": 3}),
            "3 key/value heads do not divide 4",
        ),
        (
            serde_json::json!({"num_key_value_heads": 0}),
            "0 key/value heads",
        ),
        (serde_json::json!({"head_dim": 3}), "head size 3"),
        (serde_json::json!({"num_hidden_layers": 0}), "no layers"),
        (serde_json::json!({"mlp_bias": true}), "mlp_bias"),
        (
            serde_json::json!({"sliding_window": 4096, "max_position_embeddings": 32768}),
            "sliding_window 4096",
        ),
    ] {
        let e = load(patch.clone())
            .expect_err(&patch.to_string())
            .to_string();
        assert!(
            e.contains("/models/bad/config.json") && e.contains(needle),
            "{patch}: {e}"
        );
    }
}

/// `--chat-template FILE`: a template file replaces the GGUF's own and sees the special tokens
/// the GGUF names; an unreadable or malformed file is an error naming it.
#[test]
fn a_chat_template_file_replaces_the_models_own() {
    use plumb_nn::chat::{ChatTemplate, Message};
    let dev = cpu();
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    let w = open_weights(&files, &dev, &dev, None).unwrap();
    let mut g = TextGenerator::load(&files, &w).unwrap();
    let tok = |id: u32| g.tokenizer.inner().id_to_token(id).unwrap();
    let (bos, eos) = (
        tok(g.tokenizer.bos_id.unwrap()),
        tok(g.tokenizer.eos_ids[0]),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jinja");
    std::fs::write(
        &path,
        "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}\
         {% if add_generation_prompt %}[assistant]{% endif %}{{ eos_token }}",
    )
    .unwrap();
    g.set_chat_template(ChatTemplate::from_file(&path).unwrap());
    let msgs = [
        Message::new("system", "Be brief."),
        Message::new("user", "Hi"),
    ];
    let text = g.chat.as_ref().unwrap().render(&msgs, true).unwrap();
    assert_eq!(
        text,
        format!("{bos}[system] Be brief.\n[user] Hi\n[assistant]{eos}")
    );
    assert_eq!(
        g.chat_ids(&msgs).unwrap(),
        g.tokenizer.encode(&text, false).unwrap()
    );
    let missing = dir.path().join("missing.jinja");
    let e = ChatTemplate::from_file(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.jinja"), "{e}");
    std::fs::write(&path, "{% for m in messages %}").unwrap();
    let e = ChatTemplate::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("t.jinja") && e.contains("chat template"), "{e}");
}

/// `plan_model_kv`: an f16 cache appears in the plan as casts of the new keys and values to f16
/// and f16 cache writes, with fewer resident bytes than the f32 cache's plan; an embedding model
/// has no cache to choose a dtype for.
#[test]
fn plan_shows_the_kv_cache_dtype() {
    use plumb_nn::pipeline::plan_model_kv;
    let dev = cpu();
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    let full = plan_model_kv(&files, &dev, None, false, None).unwrap();
    let half = plan_model_kv(&files, &dev, None, false, Some(DType::F16)).unwrap();
    let writes = |p: &plumb_nn::pipeline::ModelPlan, dt: DType| {
        p.plan
            .ops
            .iter()
            .filter(|o| o.op == "write_slice" && o.output.0 == dt)
            .count()
    };
    let layers = 2 * 30; // K and V of each layer, per forward
    assert!(
        writes(&half, DType::F16) >= layers,
        "{:?}",
        half.plan.counts
    );
    assert_eq!(writes(&half, DType::F32), 0);
    assert!(writes(&full, DType::F32) >= layers);
    let casts = half
        .plan
        .ops
        .iter()
        .filter(|o| o.op == "cast" && o.inputs[0].0 == DType::F32 && o.output.0 == DType::F16)
        .count();
    assert!(casts >= layers, "f32 → f16 casts: {casts}");
    assert!(half.plan.resident_bytes < full.plan.resident_bytes);
    assert!(
        half.workload.contains("KV cache in f16"),
        "{}",
        half.workload
    );
    let minilm = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let err = plan_model_kv(&minilm, &dev, None, false, Some(DType::F16))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("embedding model"), "{err}");
}
