//! Plans (meta-device traces checked against a target) and MiniLM on gpu:0 (lavapipe here).
//! GPU cases print why they are skipped when this machine has no GPU adapter.

mod common;

use common::*;
use plumb_core::{DType, Device, Error, Policy};
use plumb_nn::convert::convert;
use plumb_nn::models::bert::Embedder;
use plumb_nn::pipeline::{load_model, plan_model, Model};
use plumb_nn::resolve_model;

fn gpu() -> Option<Device> {
    match plumb::device("gpu:0") {
        Ok(d) => Some(d),
        Err(e) => {
            println!("skipped: no gpu:0 on this machine ({e})");
            None
        }
    }
}

#[test]
fn plan_of_minilm_on_cpu_is_all_native() {
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let p = plan_model(&files, &cpu(), None, false).unwrap();
    assert!(p.plan.ok, "{}", p.plan);
    assert!(p.plan.ops.len() > 100);
    assert!(p
        .plan
        .ops
        .iter()
        .any(|o| o.op == "matmul" && o.dtype == DType::F32));
    // weights: 22.7M params in f32, plus the i64 position ids
    assert!(
        (85 << 20..95 << 20).contains(&p.weight_bytes),
        "{}",
        p.weight_bytes
    );
}

#[test]
fn f64_checkpoint_on_a_gpu_is_converted_and_strict_refuses_before_loading() {
    let Some(g) = gpu() else { return };
    let out = tempfile::tempdir().unwrap();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    convert(&files, DType::F64, out.path()).unwrap();
    let f64_files = resolve_model(out.path().to_str().unwrap()).unwrap();
    if g.supports(plumb_core::OpFamily::Matmul, DType::F64)
        .is_runnable()
    {
        println!("skipped: {} computes f64", g.id());
        return;
    }
    let p = plan_model(&f64_files, &g, None, false).unwrap();
    assert_eq!(p.dtype, DType::F32);
    assert!(
        p.conversions.iter().any(|c| c.contains("f64 → f32")),
        "conversion shown: {:?}",
        p.conversions
    );
    assert!(p.plan.ok, "{}", p.plan);
    // strict: an error before any weight reaches the device
    let strict = g.with_policy(Policy::STRICT);
    let err = load_model(&f64_files, &strict, None, false, None)
        .err()
        .unwrap();
    assert!(matches!(err, Error::PolicyRefused { .. }), "{err}");
    assert!(
        strict.report().is_empty(),
        "nothing ran or was converted on the device"
    );
}

/// A bf16 checkpoint on a device without bf16 compute (wgpu: WGSL has no bf16, kernels widen to
/// f32): the plan shows every bf16 matmul emulated via f32; under `safe` the weights are
/// converted to f32 on load and the conversion is listed.
#[test]
fn bf16_checkpoint_on_a_gpu_shows_the_emulation_and_the_safe_conversion() {
    let Some(g) = gpu() else { return };
    if g.supports(plumb_core::OpFamily::Matmul, DType::BF16) == plumb_core::Support::Native {
        println!("skipped: {} computes bf16 natively", g.id());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    convert(&files, DType::BF16, out.path()).unwrap();
    let bf16_files = resolve_model(out.path().to_str().unwrap()).unwrap();

    let p = plan_model(&bf16_files, &g.with_policy(Policy::AUTO), None, false).unwrap();
    assert_eq!(p.dtype, DType::BF16, "auto keeps the checkpoint's dtype");
    let text = p.plan.to_string();
    println!("{text}");
    assert!(p.plan.ok, "{text}");
    assert!(p.plan.count("emulated") > 0, "{text}");
    assert!(
        p.plan.ops.iter().any(|o| o.op == "matmul"
            && o.dtype == DType::BF16
            && o.decision.to_string() == "emulated via f32"),
        "{text}"
    );
    assert!(text.contains("emulated via f32"), "{text}");

    let safe = plan_model(&bf16_files, &g.with_policy(Policy::SAFE), None, false).unwrap();
    assert_eq!(safe.dtype, DType::F32);
    assert!(
        safe.conversions.iter().any(|c| c.contains("bf16 → f32")),
        "conversion shown: {:?}",
        safe.conversions
    );
}

#[test]
fn minilm_on_gpu_matches_sentence_transformers() {
    let Some(g) = gpu() else { return };
    let fx = fixture_json("minilm.json");
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let items: Vec<&serde_json::Value> = fx["items"].as_array().unwrap().iter().take(3).collect();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    for (dt, min) in [(DType::F32, 0.9999), (DType::F16, 0.999)] {
        let dev = g.with_policy(Policy::AUTO);
        let (m, _, plan) = load_model(&files, &dev, Some(dt), false, None).unwrap();
        let Model::Embedder(e) = m else { panic!() };
        let e: &Embedder = &e;
        let got = e.embed(&texts, 3, &dev).unwrap();
        let mut worst = 1.0f64;
        for (it, v) in items.iter().zip(&got) {
            let want: Vec<f32> = it["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            worst = worst.min(cosine(v, &want));
        }
        println!(
            "MiniLM {dt} (weights {}) on {} ({}): worst cosine {worst:.7} over {} sentences",
            plan.dtype,
            dev.id(),
            dev.info().name,
            texts.len()
        );
        assert!(worst >= min, "{dt} on {}: cosine {worst}", dev.id());
    }
}

/// SmolLM2 on gpu:0: exact f32 (weights dequantized) must give the reference's greedy tokens
/// (8 steps of one prompt: lavapipe is slow); quantized weights report their logits error.
#[test]
fn smollm2_on_gpu_matches_transformers() {
    let Some(g) = gpu() else { return };
    let fx = fixture_json("smollm2.json");
    let run = &fx["runs"][2];
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let files = resolve_model(smollm2_file().to_str().unwrap()).unwrap();
    for dequantize in [true, false] {
        let dev = g.with_policy(Policy::AUTO);
        let (m, _, _) = load_model(&files, &dev, Some(DType::F32), dequantize, None).unwrap();
        let Model::Generator(gen) = m else { panic!() };
        let p = ids(&run["prompt_ids"]);
        let mut cache = plumb_nn::models::llama::KvCache::new(gen.model.config.num_hidden_layers);
        let mut got = Vec::new();
        let mut err = 0f64;
        let mut l = gen.model.forward(&p, &mut cache, &dev, false).unwrap();
        for st in run["steps"].as_array().unwrap().iter().take(8) {
            let v = l.to_vec::<f32>().unwrap();
            for (id, x) in ids(&st["top_ids"])
                .iter()
                .zip(st["top_logits"].as_array().unwrap())
            {
                err = err.max((v[*id as usize] as f64 - x.as_f64().unwrap()).abs());
            }
            let next = plumb_nn::generate::argmax(&v) as u32;
            got.push(next);
            l = gen.model.forward(&[next], &mut cache, &dev, false).unwrap();
        }
        let mode = if dequantize {
            "f32 (dequantized)"
        } else {
            "q4_1/q8_0 weights"
        };
        println!(
            "SmolLM2 {mode} on {}: top-10 logits max abs error {err:.3e} over 8 steps",
            dev.id()
        );
        if dequantize {
            assert_eq!(got, ids(&run["greedy_ids"])[..8].to_vec());
            assert!(err < 1e-2, "{err}");
        } else {
            assert!(err < 1.0, "{err}");
        }
    }
}
