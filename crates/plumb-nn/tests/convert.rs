//! `convert`: GGUF → Hugging Face safetensors folder (un-permuted Q/K) that still generates the
//! reference tokens; safetensors → f16; atomic output; input untouched.

mod common;

use common::*;
use plumb_core::DType;
use plumb_nn::convert::convert;
use plumb_nn::generate::argmax;
use plumb_nn::generate::TextGenerator;
use plumb_nn::models::bert::Embedder;
use plumb_nn::models::llama::KvCache;
use plumb_nn::safetensors::SafetensorsFile;
use plumb_nn::source::StoredDType;
use plumb_nn::{open_weights, resolve_model};

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn sha(p: &std::path::Path) -> (u64, std::time::SystemTime) {
    let m = std::fs::metadata(p).unwrap();
    (m.len(), m.modified().unwrap())
}

#[test]
fn smollm2_gguf_to_hf_safetensors_generates_the_same_tokens() {
    let fx = fixture_json("smollm2.json");
    let src = smollm2_file();
    let before = sha(&src);
    let out = tempfile::tempdir().unwrap();
    let files = resolve_model(src.to_str().unwrap()).unwrap();
    let rep = convert(&files, DType::F32, out.path()).unwrap();
    assert_eq!(rep.tensors, 272);
    assert_eq!(sha(&src), before, "input untouched");
    let st = SafetensorsFile::open(out.path().join("model.safetensors")).unwrap();
    assert_eq!(
        st.get("model.layers.0.self_attn.q_proj.weight")
            .unwrap()
            .dtype,
        StoredDType::Plain(DType::F32)
    );
    // the converted folder loads through the Hugging Face path (rotate-half RoPE)
    let dev = cpu();
    let hf = resolve_model(out.path().to_str().unwrap()).unwrap();
    let w = open_weights(&hf, &dev, &dev, None).unwrap();
    assert_eq!(
        w.float_dtype(),
        DType::F32,
        "torch_dtype of the written config"
    );
    let g = TextGenerator::load(&hf, &w).unwrap();
    for run in fx["runs"].as_array().unwrap().iter().take(2) {
        let p = g
            .prompt_ids(
                run["prompt"].as_str().unwrap(),
                run["chat"].as_bool().unwrap(),
            )
            .unwrap();
        assert_eq!(p, ids(&run["prompt_ids"]));
        let mut cache = KvCache::new(g.model.config.num_hidden_layers);
        let mut l = g.model.forward(&p, &mut cache, &dev, false).unwrap();
        let mut got = Vec::new();
        for _ in 0..32 {
            let next = argmax(&l.to_vec::<f32>().unwrap()) as u32;
            got.push(next);
            l = g.model.forward(&[next], &mut cache, &dev, false).unwrap();
        }
        assert_eq!(got, ids(&run["greedy_ids"])[..32].to_vec());
    }
}

#[test]
fn minilm_to_f16_keeps_side_files_and_accuracy() {
    let fx = fixture_json("minilm.json");
    let out = tempfile::tempdir().unwrap();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    convert(&files, DType::F16, out.path()).unwrap();
    for f in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
    ] {
        assert!(out.path().join(f).is_file(), "{f} copied");
    }
    let st = SafetensorsFile::open(out.path().join("model.safetensors")).unwrap();
    assert_eq!(
        st.get("embeddings.word_embeddings.weight").unwrap().dtype,
        StoredDType::Plain(DType::F16)
    );
    assert_eq!(
        st.get("embeddings.position_ids").unwrap().dtype,
        StoredDType::Plain(DType::I64),
        "integer tensors keep their dtype"
    );
    let dev = cpu();
    let conv = resolve_model(out.path().to_str().unwrap()).unwrap();
    let w = open_weights(&conv, &dev, &dev, None).unwrap();
    assert_eq!(
        w.float_dtype(),
        DType::F16,
        "config torch_dtype is the default dtype"
    );
    let e = Embedder::load(&conv, &w).unwrap();
    let it = &fx["items"][0];
    let v = e.embed(&[it["text"].as_str().unwrap()], 1, &dev).unwrap();
    let want: Vec<f32> = it["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert!(cosine(&v[0], &want) > 0.999);
    // --dtype overrides the config
    let w = open_weights(&conv, &dev, &dev, Some(DType::F32)).unwrap();
    assert_eq!(w.float_dtype(), DType::F32);
}

#[test]
fn convert_failure_leaves_no_partial_file() {
    let out = tempfile::tempdir().unwrap();
    // the final name is taken by a folder: the rename fails after the data was written
    std::fs::create_dir(out.path().join("model.safetensors")).unwrap();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let err = convert(&files, DType::F16, out.path()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    let left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        left,
        vec!["model.safetensors".to_string()],
        "no temp or side file left: {left:?}"
    );
    assert!(out.path().join("model.safetensors").is_dir());
    // a non-float target is refused before anything is written
    let out2 = tempfile::tempdir().unwrap();
    assert!(convert(&files, DType::Q4_0, out2.path()).is_err());
    assert_eq!(std::fs::read_dir(out2.path()).unwrap().count(), 0);
    // and the model's own folder is never the output
    assert!(convert(&files, DType::F16, &minilm_dir()).is_err());
}
