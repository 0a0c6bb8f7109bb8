//! all-MiniLM-L6-v2 against sentence-transformers (float32, CPU) on the cpu device, or on
//! `PLUMB_TEST_DEVICE`.

mod common;

use common::*;
use plumb_core::DType;
use plumb_nn::models::bert::Embedder;
use plumb_nn::{open_weights, resolve_model};

fn check(dtype: DType, min_cos: f64) {
    check_dir(&minilm_dir(), dtype, min_cos)
}

fn check_dir(dir: &std::path::Path, dtype: DType, min_cos: f64) {
    let fx = fixture_json("minilm.json");
    let dev = test_device();
    let files = resolve_model(dir.to_str().unwrap()).unwrap();
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

/// Query, key and value run as one stacked linear layer where their weights allow it (the
/// tests above); a layer whose biases do not all exist keeps them apart. A copy of MiniLM
/// without layer 0's key bias takes that path there, and must still match the reference: a bias
/// added to every key shifts each row of scores by one constant, which softmax ignores.
#[test]
fn minilm_without_a_key_bias_runs_qkv_apart_and_matches() {
    let src = minilm_dir();
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir(dir.path().join(&name)).unwrap();
            for f in std::fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), dir.path().join(&name).join(f.file_name())).unwrap();
            }
        } else if name != "model.safetensors" {
            std::fs::copy(e.path(), dir.path().join(&name)).unwrap();
        }
    }
    let dropped = "encoder.layer.0.attention.self.key.bias";
    let st = std::fs::read(src.join("model.safetensors")).unwrap();
    let hlen = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&st[8..8 + hlen]).unwrap();
    let data = &st[8 + hlen..];
    assert!(
        header.contains_key(dropped),
        "{dropped} is in the checkpoint"
    );
    let (mut out_header, mut out_data) = (serde_json::Map::new(), Vec::new());
    for (name, info) in header {
        if name == dropped || name == "__metadata__" {
            continue;
        }
        let off = &info["data_offsets"];
        let (a, b) = (
            off[0].as_u64().unwrap() as usize,
            off[1].as_u64().unwrap() as usize,
        );
        let mut info = info.clone();
        info["data_offsets"] = serde_json::json!([out_data.len(), out_data.len() + b - a]);
        out_data.extend_from_slice(&data[a..b]);
        out_header.insert(name, info);
    }
    let h = serde_json::to_vec(&out_header).unwrap();
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&h);
    file.extend_from_slice(&out_data);
    std::fs::write(dir.path().join("model.safetensors"), file).unwrap();
    check_dir(dir.path(), DType::F32, 0.9999);
}

/// The unpadded forward (the default of `embed`) against the padded one, token by token: real
/// tokens agree, whatever the padding around them; a host mask of the wrong length is an error.
#[test]
fn minilm_unpadded_forward_matches_the_padded_one_on_real_tokens() {
    let dev = test_device();
    let files = resolve_model(minilm_dir().to_str().unwrap()).unwrap();
    let w = open_weights(&files, &dev, &dev, Some(DType::F32)).unwrap();
    let emb = Embedder::load(&files, &w).unwrap();
    w.finish();
    let texts = [
        "a",
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "",
        "Padding sits in the middle rows of this batch.",
    ];
    let rows = emb.tokenizer.encode_rows(&texts, 128).unwrap();
    let batch = emb.tokenizer.pad(&rows);
    let (b, s) = (batch.batch, batch.seq);
    assert!(batch.mask.contains(&0), "the batch has padding");
    let ids: Vec<i32> = batch.ids.iter().map(|&i| i as i32).collect();
    let ids = plumb_core::Tensor::from_slice(&ids, [b, s], &dev).unwrap();
    let m: Vec<f64> = batch.mask.iter().map(|&m| m as f64).collect();
    let mask = plumb_core::Tensor::from_f64(&m, DType::F32, [b, s], &dev).unwrap();
    let padded = emb.bert.forward(&ids, &mask).unwrap();
    let unpadded = emb.bert.forward_unpadded(&ids, &mask, &batch.mask).unwrap();
    assert_eq!(padded.dims(), unpadded.dims());
    let (p, u) = (
        padded.to_vec::<f32>().unwrap(),
        unpadded.to_vec::<f32>().unwrap(),
    );
    let h = emb.bert.config.hidden_size;
    let mut worst = 0.0f32;
    for (pos, &m) in batch.mask.iter().enumerate() {
        if m != 0 {
            let d = max_abs_diff(&p[pos * h..(pos + 1) * h], &u[pos * h..(pos + 1) * h]);
            worst = worst.max(d as f32);
        }
    }
    assert!(worst < 1e-4, "real tokens differ by {worst}");
    println!(
        "unpadded vs padded on {}: max abs diff {worst:.2e}",
        dev.id()
    );
    let err = emb.bert.forward_unpadded(&ids, &mask, &[1, 0]).unwrap_err();
    assert!(err.to_string().contains("mask of 2 values"), "{err}");
    // ids of the wrong rank, or a mask of another shape: an error naming both shapes
    let flat = ids.reshape([b * s]).unwrap();
    for (i, m) in [(&flat, &mask), (&ids, &mask.narrow(1, 0, 1).unwrap())] {
        let err = emb.bert.forward_unpadded(i, m, &batch.mask).unwrap_err();
        assert!(err.to_string().contains("ids [batch, seq]"), "{err}");
        let err = emb.bert.forward(i, m).unwrap_err();
        assert!(err.to_string().contains("ids [batch, seq]"), "{err}");
    }
}
