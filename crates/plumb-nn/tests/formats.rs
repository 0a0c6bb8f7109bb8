//! safetensors and GGUF readers: reference files, real model files, and corrupted copies
//! (truncated, lying headers) that must give clear errors naming the file — never a panic.

mod common;

use common::*;
use plumb_core::{DType, Error};
use plumb_nn::gguf::{GgufFile, GgufValue};
use plumb_nn::safetensors::{SafetensorsFile, SafetensorsSet};
use plumb_nn::source::{decode_f32, StoredDType};
use std::path::Path;

fn assert_format_error(r: Result<impl std::fmt::Debug, Error>, path: &Path, needle: &str) {
    match r {
        Err(e @ Error::Format { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file: {msg}"
            );
            assert!(
                msg.contains(needle),
                "error '{msg}' does not mention '{needle}'"
            );
        }
        other => panic!("expected a format error mentioning '{needle}', got {other:?}"),
    }
}

#[test]
fn tiny_gguf_matches_the_gguf_package() {
    let exp = fixture_json("tiny_gguf.json");
    let f = GgufFile::open(fixture("tiny.gguf")).unwrap();
    assert_eq!(f.version, 3);
    let meta = exp["metadata"].as_object().unwrap();
    for (k, v) in meta {
        let got = f.meta(k).unwrap_or_else(|| panic!("metadata {k} missing"));
        match v {
            serde_json::Value::Bool(b) => assert_eq!(got, &GgufValue::Bool(*b), "{k}"),
            serde_json::Value::String(s) => assert_eq!(got.as_str(), Some(s.as_str()), "{k}"),
            serde_json::Value::Number(n) => {
                assert_eq!(got.as_f64().unwrap(), n.as_f64().unwrap(), "{k}")
            }
            serde_json::Value::Array(a) => {
                let g = got.as_array().unwrap();
                assert_eq!(g.len(), a.len(), "{k}");
                for (x, y) in g.iter().zip(a) {
                    match y {
                        serde_json::Value::String(s) => assert_eq!(x.as_str(), Some(s.as_str())),
                        _ => assert_eq!(x.as_i64(), y.as_i64()),
                    }
                }
            }
            _ => unreachable!(),
        }
    }
    // every value type is distinguished
    assert_eq!(f.meta("t.u8"), Some(&GgufValue::U8(200)));
    assert_eq!(f.meta("t.i16"), Some(&GgufValue::I16(-30000)));
    assert_eq!(f.meta("t.f64"), Some(&GgufValue::F64(0.125)));
    let tensors = exp["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), f.tensors().len());
    for (name, t) in tensors {
        let info = f.get(name).unwrap();
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(info.shape, shape, "{name}");
        let got = decode_f32(f.path(), info, f.bytes(name).unwrap()).unwrap();
        let want: Vec<f32> = t["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let err = max_abs_diff(&got, &want);
        assert!(err < 1e-5, "{name} ({}): max abs diff {err}", info.dtype);
    }
    assert!(matches!(
        f.get("q6_k").unwrap().dtype,
        StoredDType::KQuant(plumb_nn::kquant::KQuant::Q6K)
    ));
}

#[test]
fn smollm2_gguf_header() {
    let f = GgufFile::open(smollm2_file()).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.tensors().len(), 272);
    assert_eq!(
        f.meta("general.architecture").unwrap().as_str(),
        Some("llama")
    );
    assert_eq!(f.require_u64("llama.block_count").unwrap(), 30);
    let count = |d: DType| {
        f.tensors()
            .iter()
            .filter(|t| t.dtype == StoredDType::Plain(d))
            .count()
    };
    assert_eq!(count(DType::Q4_1), 210);
    assert_eq!(count(DType::F32), 61);
    assert_eq!(count(DType::Q8_0), 1);
    let emb = f.get("token_embd.weight").unwrap();
    assert_eq!(emb.shape, vec![49152, 576]);
    let toks = f.meta("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!(toks.len(), 49152);
}

#[test]
fn minilm_safetensors_header() {
    let set = SafetensorsSet::open(minilm_dir()).unwrap();
    let (pos, _) = set.info("embeddings.position_ids").unwrap();
    assert_eq!(pos.dtype, StoredDType::Plain(DType::I64));
    assert_eq!(pos.shape, vec![1, 512]);
    let (w, _) = set.info("embeddings.word_embeddings.weight").unwrap();
    assert_eq!(w.shape, vec![30522, 384]);
    assert_eq!(w.dtype, StoredDType::Plain(DType::F32));
    assert!(set.names().count() > 100);
}

/// Copies of the real file cut at several points; every one must fail cleanly.
#[test]
fn truncated_files_fail_with_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = std::fs::read(smollm2_file()).unwrap();
    let st = std::fs::read(minilm_dir().join("model.safetensors")).unwrap();
    for (i, &frac) in [0.0, 0.000001, 0.0005, 0.01, 0.3, 0.9999]
        .iter()
        .enumerate()
    {
        let p = dir.path().join(format!("cut{i}.gguf"));
        let n = ((gguf.len() as f64) * frac) as usize;
        std::fs::write(&p, &gguf[..n]).unwrap();
        assert_format_error(GgufFile::open(&p), &p, "");
        let p = dir.path().join(format!("cut{i}.safetensors"));
        let n = ((st.len() as f64) * frac) as usize;
        std::fs::write(&p, &st[..n]).unwrap();
        assert_format_error(SafetensorsFile::open(&p), &p, "");
    }
    // a cut inside the data names the tensor whose data is missing
    let p = dir.path().join("data_cut.gguf");
    std::fs::write(&p, &gguf[..gguf.len() - 100]).unwrap();
    assert_format_error(GgufFile::open(&p), &p, "tensor '");
    let p = dir.path().join("data_cut.safetensors");
    std::fs::write(&p, &st[..st.len() - 100]).unwrap();
    assert_format_error(SafetensorsFile::open(&p), &p, "tensor '");
}

fn safetensors_bytes(header: &str, data_len: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend(std::iter::repeat_n(0u8, data_len));
    b
}

#[test]
fn lying_safetensors_headers() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#,
            16,
            "tensor 'a'",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            8,
            "beyond the end",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
            "overlap",
        ),
        (
            r#"{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}"#,
            8,
            "unsupported dtype",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4611686018427387904, 8],"data_offsets":[0,8]}}"#,
            8,
            "overflows",
        ),
        (r#"{"a":{"dtype":"F32"}"#, 0, "JSON"),
        (r#"[1,2]"#, 0, "object"),
    ];
    for (i, (h, n, needle)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("lie{i}.safetensors"));
        std::fs::write(&p, safetensors_bytes(h, *n)).unwrap();
        assert_format_error(SafetensorsFile::open(&p), &p, needle);
    }
    // a header length far beyond the file
    let p = dir.path().join("huge.safetensors");
    let mut b = (1u64 << 40).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    std::fs::write(&p, b).unwrap();
    assert_format_error(SafetensorsFile::open(&p), &p, "header length");
    // and a good one round-trips
    let p = dir.path().join("good.safetensors");
    let h = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}"#;
    std::fs::write(&p, safetensors_bytes(h, 12)).unwrap();
    let f = SafetensorsFile::open(&p).unwrap();
    assert_eq!(f.metadata()["format"], "pt");
    assert_eq!(f.bytes("a").unwrap().len(), 12);
}

/// Bytes of the real GGUF with one header field overwritten.
#[test]
fn lying_gguf_headers() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(fixture("tiny.gguf")).unwrap();
    let patch = |i: usize, at: usize, bytes: &[u8], needle: &str| {
        let mut b = orig.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        let p = dir.path().join(format!("lie{i}.gguf"));
        std::fs::write(&p, &b).unwrap();
        assert_format_error(GgufFile::open(&p), &p, needle);
    };
    patch(0, 0, b"GGUX", "not a GGUF file");
    patch(1, 4, &7u32.to_le_bytes(), "version 7");
    patch(2, 8, &u64::MAX.to_le_bytes(), "tensor count");
    patch(3, 16, &(1u64 << 50).to_le_bytes(), "metadata count");
    // the first key's length
    patch(4, 24, &(1u64 << 40).to_le_bytes(), "metadata key #0");
    // the first value's type
    let key_len = u64::from_le_bytes(orig[24..32].try_into().unwrap()) as usize;
    patch(
        5,
        32 + key_len,
        &99u32.to_le_bytes(),
        "unknown metadata value type 99",
    );
    // a tensor's offset pointing past the data: find the last tensor info's offset field by name
    let f = GgufFile::open(fixture("tiny.gguf")).unwrap();
    let last = f.tensors().last().unwrap().name.clone();
    let pos = orig
        .windows(last.len())
        .rposition(|w| w == last.as_bytes())
        .unwrap();
    let nd = u32::from_le_bytes(
        orig[pos + last.len()..pos + last.len() + 4]
            .try_into()
            .unwrap(),
    ) as usize;
    let off_at = pos + last.len() + 4 + 8 * nd + 4;
    patch(
        6,
        off_at,
        &(1u64 << 20).to_le_bytes(),
        &format!("tensor '{last}'"),
    );
    patch(7, off_at, &1u64.to_le_bytes(), "not aligned");
    let type_at = off_at - 4;
    patch(8, type_at, &16u32.to_le_bytes(), "IQ2_XXS");
}
