//! Model throughput on one device, printed as the peers' `RESULT` lines:
//! MiniLM sentences/s (batch 32 and batch 1) and SmolLM2 prefill / decode tokens/s.
//!
//! cargo run --release -p plumb-nn --example model_bench -- [SENTENCES_FILE [PROMPT_FILE]]
//!
//! SENTENCES_FILE: one sentence per line (default: 256 generated sentences of 8–64 words);
//! PROMPT_FILE: text whose first 256 tokens are the prefill prompt and first 16 the decode prompt.
//! `PLUMB_BENCH_ONLY=embed1|embed32|llm-q4_1|llm-f32` runs one part (for profiling);
//! `llm-q4_1-prefill` / `llm-q4_1-decode` one half of it.
//! `PLUMB_BENCH_DEVICE` (default `cpu`; `cuda:0`, `gpu:0`, ...) and `PLUMB_BENCH_DTYPE` (default
//! f32) pick where and in what dtype; `PLUMB_BENCH_MINILM` / `PLUMB_BENCH_LLM` point at other model
//! folders or files (a safetensors Llama folder runs once, labelled with the dtype);
//! `PLUMB_BENCH_KV=f16` keeps SmolLM2's KV cache in that dtype (its lines then say `kv=f16`).
//! Models from $PLUMB_MODELS or target/models (scripts/fetch_models.sh). Median of 3 runs after
//! one warm-up.

use plumb_core::{DType, Device, Result};
use plumb_nn::generate::{Sampler, SamplingParams};
use plumb_nn::models::llama::KvCache;
use plumb_nn::pipeline::{load_model, Model};
use plumb_nn::resolve_model;
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time_runs(runs: usize, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    Ok(median(t))
}

fn default_sentences(n: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "the", "model", "runs", "on", "every", "device", "quick", "brown", "fox", "jumps", "over",
        "lazy", "dog", "river", "mountain", "city", "light", "data", "tensor", "memory", "fast",
        "slow", "green", "house", "music", "paper", "window", "garden", "language", "science",
        "history", "ocean", "winter", "summer", "engine", "signal", "market", "teacher", "story",
        "bridge",
    ];
    let mut rng = plumb_core::rng::SplitMix64::new(1234);
    (0..n)
        .map(|_| {
            let k = 8 + (rng.next_u64() % 57) as usize;
            let w: Vec<&str> = (0..k)
                .map(|_| WORDS[(rng.next_u64() % WORDS.len() as u64) as usize])
                .collect();
            format!("{}.", w.join(" "))
        })
        .collect()
}

fn models() -> PathBuf {
    match std::env::var_os("PLUMB_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
    }
}

/// Whether the part `name` runs under `PLUMB_BENCH_ONLY`.
fn only(name: &str) -> bool {
    std::env::var("PLUMB_BENCH_ONLY").map_or(true, |v| name.starts_with(&v) || v.starts_with(name))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sentences: Vec<String> = match args.first() {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| plumb_core::Error::io(p, e))?
            .lines()
            .map(|l| l.to_string())
            .collect(),
        None => default_sentences(256),
    };
    let prompt_text = match args.get(1) {
        Some(p) => std::fs::read_to_string(p).map_err(|e| plumb_core::Error::io(p, e))?,
        None => default_sentences(64).join(" "),
    };
    let threads = plumb_cpu::CpuBackend::new().num_threads();
    let dev_name = std::env::var("PLUMB_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let dev: Device = plumb::device(&dev_name)?;
    let dev_id = dev.id().to_string();
    let dtype: DType = std::env::var("PLUMB_BENCH_DTYPE")
        .unwrap_or_else(|_| "f32".into())
        .parse()?;
    let refs: Vec<&str> = sentences.iter().map(|s| s.as_str()).collect();
    let path = |var: &str, default: &str| {
        std::env::var(var).unwrap_or_else(|_| models().join(default).to_string_lossy().into_owned())
    };

    let files = resolve_model(&path("PLUMB_BENCH_MINILM", "all-MiniLM-L6-v2"))?;
    let (m, _, _) = load_model(&files, &dev, Some(dtype), false, None)?;
    if let Model::Embedder(e) = &m {
        // all sentences at both batch sizes, as the peers run them (scripts/peers_minilm_batch.py)
        for (batch, n) in [(32usize, refs.len()), (1, refs.len())] {
            if !only(&format!("embed{batch}")) {
                continue;
            }
            let secs = time_runs(3, &mut || e.embed(&refs[..n], batch, &dev).map(|_| ()))?;
            println!(
                "RESULT framework=plumb op=minilm_embed dtype={dtype} shape={n}x{batch} median_ms={:.4} value={:.2} unit=sent/s threads={threads} device={dev_id}",
                secs * 1e3,
                n as f64 / secs
            );
        }
    }

    let custom_llm = std::env::var("PLUMB_BENCH_LLM").is_ok();
    let files = resolve_model(&path(
        "PLUMB_BENCH_LLM",
        "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ))?;
    let kv: Option<DType> = match std::env::var("PLUMB_BENCH_KV") {
        Ok(s) if !s.trim().is_empty() => Some(s.trim().parse()?),
        _ => None,
    };
    let kv_note = kv.map_or(String::new(), |d| format!(" kv={d}"));
    let runs: Vec<(&str, bool)> = if custom_llm {
        vec![(dtype.name(), false)]
    } else {
        vec![("q4_1", false), (dtype.name(), true)]
    };
    for (label, dequantize) in runs {
        if !only(&format!("llm-{label}")) {
            continue;
        }
        let (mut m, _, _) = load_model(&files, &dev, Some(dtype), dequantize, None)?;
        let Model::Generator(g) = &mut m else {
            continue;
        };
        g.kv_dtype = kv;
        let g = &*g;
        let ids = g.tokenizer.encode(&prompt_text, false)?;
        let prefill: Vec<u32> = ids.iter().copied().cycle().take(256).collect();
        if only(&format!("llm-{label}-prefill")) {
            let secs = time_runs(3, &mut || {
                let mut cache = KvCache::with_dtype(g.model.config.num_hidden_layers, kv)?;
                g.model
                    .forward(&prefill, &mut cache, &dev, false)?
                    .to_vec::<f32>()?;
                Ok(())
            })?;
            println!(
            "RESULT framework=plumb op=llm_prefill dtype={label} shape=256 median_ms={:.4} value={:.2} unit=tok/s threads={threads} device={dev_id}{kv_note}",
            secs * 1e3,
            256.0 / secs
        );
        }
        if !only(&format!("llm-{label}-decode")) {
            continue;
        }
        let mut rates = Vec::new();
        for _ in 0..3 {
            let st = g.generate(
                &ids[..16.min(ids.len())],
                128,
                &mut Sampler::new(SamplingParams::default())?,
                false,
                &dev,
                &mut |_| Ok(()),
            )?;
            rates.push(st.decode_tok_s());
        }
        println!(
            "RESULT framework=plumb op=llm_decode dtype={label} shape=128 value={:.2} unit=tok/s threads={threads} device={dev_id}{kv_note}",
            median(rates)
        );
    }
    Ok(())
}
