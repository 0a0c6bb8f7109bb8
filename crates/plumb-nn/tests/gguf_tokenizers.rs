//! Tokenizers built from GGUF metadata other than SmolLM2's: SentencePiece BPE (`llama`) and
//! byte-level BPE split the Llama-3 / Qwen2 way, against fixtures from
//! scripts/make_tokenizer_fixtures.py (tiny vocabularies trained by sentencepiece / tokenizers;
//! references from sentencepiece, the tokenizers library and transformers' GGUF loader).

mod common;

use common::*;
use plumb_core::Error;
use plumb_nn::gguf::GgufFile;
use plumb_nn::tokenizer_gguf::spm_merges;
use plumb_nn::Tokenizer;
use serde_json::Value;
use std::path::Path;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn load(fx: &Value, key: &str) -> (Tokenizer, Vec<Value>) {
    let f = GgufFile::open(fixture(fx[key]["file"].as_str().unwrap())).unwrap();
    let tok = Tokenizer::from_gguf(&f).unwrap();
    assert_eq!(
        tok.vocab_size(),
        fx[key]["vocab_size"].as_u64().unwrap() as usize
    );
    (tok, fx[key]["items"].as_array().unwrap().clone())
}

const SPM_SPECIALS: [&str; 3] = ["<s>", "</s>", "<unk>"];

#[test]
fn sentencepiece_gguf_matches_sentencepiece() {
    let fx = fixture_json("gguf_tokenizers.json");
    let (tok, items) = load(&fx, "spm");
    assert_eq!(tok.bos_id, tok.token_to_id("<s>"));
    assert_eq!(tok.eos_ids, vec![tok.token_to_id("</s>").unwrap()]);
    assert!(tok.add_bos);
    let bos = tok.bos_id.unwrap();
    let mut checked_hf = 0;
    for it in &items {
        let text = it["text"].as_str().unwrap();
        // sentencepiece, with control tokens cut out the way llama.cpp does it
        let want = ids(&it["sp_ids"]);
        assert_eq!(tok.encode(text, false).unwrap(), want, "text {text:?}");
        let mut with_bos = vec![bos];
        with_bos.extend(&want);
        assert_eq!(tok.encode(text, true).unwrap(), with_bos, "text {text:?}");
        if !SPM_SPECIALS.iter().any(|s| text.contains(s)) {
            // sentencepiece decodes its ids back to the text
            assert_eq!(it["sp_decoded"].as_str().unwrap(), text);
            assert_eq!(tok.decode(&want, false).unwrap(), text, "decode {text:?}");
        }
        // transformers 5 builds the GGUF tokenizer with Metaspace(prepend_scheme="first"), which
        // adds no `▁` to text already starting with a space nor after a special token; elsewhere
        // it must agree
        if !text.starts_with(char::is_whitespace) && !SPM_SPECIALS.iter().any(|s| text.contains(s))
        {
            assert_eq!(ids(&it["hf_ids"]), want, "transformers on {text:?}");
            assert_eq!(ids(&it["hf_ids_special"]), with_bos, "{text:?}");
            assert_eq!(it["hf_decoded"].as_str().unwrap(), text);
            checked_hf += 1;
        }
    }
    assert!(checked_hf >= 15, "only {checked_hf} texts compared");
    // the fixture exercises what it is meant to
    let text_of = |t: &str| items.iter().find(|i| i["text"] == t).unwrap();
    let byte_tokens = |t: &str| {
        ids(&text_of(t)["sp_ids"])
            .iter()
            .filter(|&&i| tok.inner().id_to_token(i).unwrap().starts_with("<0x"))
            .count()
    };
    assert!(
        byte_tokens("emoji 🙂🚀 and ✨ and 🦀") >= 8,
        "byte fallback"
    );
    assert!(ids(&text_of("text with </s> inside")["sp_ids"]).contains(&2));
}

#[test]
fn sentencepiece_merges_match_transformers() {
    let fx = fixture_json("gguf_tokenizers.json");
    let f = GgufFile::open(fixture(fx["spm"]["file"].as_str().unwrap())).unwrap();
    let strs = |k: &str| -> Vec<String> {
        let a = f.meta(k).unwrap().as_array().unwrap();
        a.iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    let tokens = strs("tokenizer.ggml.tokens");
    let tokens: Vec<&str> = tokens.iter().map(|s| s.as_str()).collect();
    let scores: Vec<f32> = f
        .meta("tokenizer.ggml.scores")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let want: Vec<(String, String)> = fx["spm"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[0].as_str().unwrap().into(), m[1].as_str().unwrap().into()))
        .collect();
    assert!(want.len() > 100);
    assert_eq!(spm_merges(&tokens, &scores), want);
}

#[test]
fn byte_level_pre_tokenizers_match_the_tokenizers_library() {
    let fx = fixture_json("gguf_tokenizers.json");
    for (key, pre) in [("llama3", "llama-bpe"), ("qwen2", "qwen2")] {
        assert_eq!(fx[key]["pre"], pre);
        let (tok, items) = load(&fx, key);
        let bos = tok.token_to_id("<|begin_of_text|>").unwrap();
        assert_eq!(tok.bos_id, Some(bos));
        assert!(tok.add_bos);
        assert!(tok.is_eos(tok.token_to_id("<|eot_id|>").unwrap()));
        for it in &items {
            let text = it["text"].as_str().unwrap();
            let want = ids(&it["tokenizers_ids"]);
            assert_eq!(tok.encode(text, false).unwrap(), want, "{key}: {text:?}");
            assert_eq!(ids(&it["hf_ids"]), want, "{key}: transformers on {text:?}");
            assert_eq!(
                tok.encode(text, true).unwrap(),
                ids(&it["hf_ids_special"]),
                "{key}: {text:?} with special tokens"
            );
            assert_eq!(tok.decode(&want, false).unwrap(), text, "{key}: decode");
            assert_eq!(it["tokenizers_decoded"].as_str().unwrap(), text);
        }
    }
    // the two splits differ on digits: Llama-3 groups up to three, Qwen2 none
    let digits = |key: &str| {
        fx[key]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["text"].as_str().unwrap().starts_with("digits"))
            .map(|i| ids(&i["tokenizers_ids"]).len())
            .unwrap()
    };
    assert!(digits("qwen2") > digits("llama3"));
}

// ---- malformed files: a tiny GGUF writer ----

enum Meta<'a> {
    Str(&'a str),
    U32(u32),
    Strs(&'a [&'a str]),
    F32s(&'a [f32]),
    I32s(&'a [i32]),
}

fn gguf_bytes(meta: &[(&str, Meta)]) -> Vec<u8> {
    fn s(b: &mut Vec<u8>, x: &str) {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    }
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend((meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        s(&mut b, k);
        let arr = |b: &mut Vec<u8>, ty: u32, n: usize| {
            b.extend(9u32.to_le_bytes());
            b.extend(ty.to_le_bytes());
            b.extend((n as u64).to_le_bytes());
        };
        match v {
            Meta::Str(x) => {
                b.extend(8u32.to_le_bytes());
                s(&mut b, x);
            }
            Meta::U32(x) => {
                b.extend(4u32.to_le_bytes());
                b.extend(x.to_le_bytes());
            }
            Meta::Strs(xs) => {
                arr(&mut b, 8, xs.len());
                xs.iter().for_each(|x| s(&mut b, x));
            }
            Meta::F32s(xs) => {
                arr(&mut b, 6, xs.len());
                xs.iter().for_each(|x| b.extend(x.to_le_bytes()));
            }
            Meta::I32s(xs) => {
                arr(&mut b, 5, xs.len());
                xs.iter().for_each(|x| b.extend(x.to_le_bytes()));
            }
        }
    }
    b
}

fn from_meta(dir: &Path, name: &str, meta: &[(&str, Meta)]) -> Result<Tokenizer, Error> {
    let p = dir.join(name);
    std::fs::write(&p, gguf_bytes(meta)).unwrap();
    Tokenizer::from_gguf(&GgufFile::open(&p).unwrap())
}

fn assert_format_error(r: Result<Tokenizer, Error>, dir: &Path, name: &str, needle: &str) {
    match r {
        Err(Error::Format { path, msg }) => {
            assert_eq!(path, dir.join(name));
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        other => panic!("{name}: expected a format error, got {other:?}"),
    }
}

#[test]
fn malformed_gguf_tokenizers_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tokens = ["<unk>", "<s>", "</s>", "▁", "a", "▁a"];
    let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0];
    let types = [2, 3, 3, 1, 1, 1];
    let base = |model: &'static str| {
        vec![
            ("tokenizer.ggml.model", Meta::Str(model)),
            ("tokenizer.ggml.tokens", Meta::Strs(&tokens)),
            ("tokenizer.ggml.scores", Meta::F32s(&scores)),
            ("tokenizer.ggml.token_type", Meta::I32s(&types)),
            ("tokenizer.ggml.bos_token_id", Meta::U32(1)),
        ]
    };
    // well formed, it works (so the errors below come from what was broken)
    let tok = from_meta(d, "ok.gguf", &base("llama")).unwrap();
    assert_eq!(tok.encode("a a", false).unwrap(), vec![5, 5]);
    assert_eq!(tok.encode("a a", true).unwrap(), vec![1, 5, 5]);

    let mut m = base("llama");
    m[2].1 = Meta::F32s(&scores[..5]);
    assert_format_error(
        from_meta(d, "scores.gguf", &m),
        d,
        "scores.gguf",
        "tokenizer.ggml.scores has 5 entries but tokenizer.ggml.tokens has 6",
    );
    let mut m = base("llama");
    m[3].1 = Meta::I32s(&types[..2]);
    assert_format_error(
        from_meta(d, "types.gguf", &m),
        d,
        "types.gguf",
        "tokenizer.ggml.token_type has 2 entries",
    );
    let mut m = base("llama");
    m.remove(2);
    assert_format_error(
        from_meta(d, "noscores.gguf", &m),
        d,
        "noscores.gguf",
        "needs tokenizer.ggml.scores",
    );
    let mut m = base("llama");
    m[2].1 = Meta::Strs(&tokens);
    assert_format_error(
        from_meta(d, "strscores.gguf", &m),
        d,
        "strscores.gguf",
        "tokenizer.ggml.scores[0] is a string",
    );
    assert_format_error(
        from_meta(d, "bert.gguf", &base("bert")),
        d,
        "bert.gguf",
        "tokenizer.ggml.model is 'bert'",
    );
    assert_format_error(
        from_meta(d, "nomerges.gguf", &base("gpt2")),
        d,
        "nomerges.gguf",
        "needs tokenizer.ggml.merges",
    );
    let mut m = base("llama");
    m[1].1 = Meta::Str("abc");
    assert_format_error(
        from_meta(d, "tokens.gguf", &m),
        d,
        "tokens.gguf",
        "tokenizer.ggml.tokens is a string, not an array",
    );
}
