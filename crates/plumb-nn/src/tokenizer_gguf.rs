//! The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata, rebuilt as a
//! `tokenizers` crate tokenizer (as a `tokenizer.json` value):
//!
//! - `gpt2`: byte-level BPE with the file's merges; the split regex follows `tokenizer.ggml.pre`
//!   (GPT-2, StarCoder-style digits, Llama-3, Qwen2).
//! - `llama`: SentencePiece BPE (Llama-2, TinyLlama, Mistral): the vocabulary with `<0xXX>` byte
//!   tokens and scores but no merges. Built like Hugging Face's LlamaTokenizerFast
//!   (`tokenizer.json` of those models): spaces become `▁` and every run of text gets a leading
//!   `▁` (SentencePiece's dummy prefix, which llama.cpp adds to each fragment after a special
//!   token too), BPE with byte fallback, and the decoder Replace `▁` → space, ByteFallback, Fuse,
//!   Strip one leading space. The merges are recovered from the vocabulary and scores the way
//!   transformers' `generate_merges` does for GGUF and SentencePiece files.

use crate::gguf::{GgufFile, GgufValue};
use plumb_core::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

/// llama.cpp's `llama_token_type` values (`tokenizer.ggml.token_type`)
const NORMAL: i64 = 1;
const UNKNOWN: i64 = 2;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// Llama-3's split (llama.cpp pre `llama-bpe`, `llama3`, …)
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split: Llama-3's with digits one by one
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer built from GGUF metadata, with the special ids the file names.
pub(crate) struct GgufTokenizer {
    pub inner: tokenizers::Tokenizer,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub add_bos: bool,
}

fn ferr(f: &GgufFile, msg: impl std::fmt::Display) -> Error {
    Error::format(f.path(), format!("tokenizer: {msg}"))
}

/// The metadata array `key`, each entry converted by `conv` (`None`: a wrong type).
fn array<'a, T>(
    f: &'a GgufFile,
    key: &str,
    what: &str,
    conv: impl Fn(&'a GgufValue) -> Option<T>,
) -> Result<Option<Vec<T>>> {
    let Some(v) = f.meta(key) else {
        return Ok(None);
    };
    let a = v
        .as_array()
        .ok_or_else(|| ferr(f, format!("{key} is a {}, not an array", v.type_name())))?;
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            conv(v).ok_or_else(|| ferr(f, format!("{key}[{i}] is a {}, not {what}", v.type_name())))
        })
        .collect::<Result<Vec<T>>>()
        .map(Some)
}

/// The array `key`, which must have one entry per token.
fn per_token<'a, T>(
    f: &'a GgufFile,
    key: &str,
    what: &str,
    n: usize,
    conv: impl Fn(&'a GgufValue) -> Option<T>,
) -> Result<Option<Vec<T>>> {
    let v = array(f, key, what, conv)?;
    if let Some(v) = &v {
        if v.len() != n {
            return Err(ferr(
                f,
                format!(
                    "{key} has {} entries but tokenizer.ggml.tokens has {n}",
                    v.len()
                ),
            ));
        }
    }
    Ok(v)
}

pub(crate) fn build(f: &GgufFile) -> Result<GgufTokenizer> {
    let model_v = f.require("tokenizer.ggml.model")?;
    let model = model_v.as_str().ok_or_else(|| {
        ferr(
            f,
            format!(
                "tokenizer.ggml.model is a {}, not a string",
                model_v.type_name()
            ),
        )
    })?;
    if model != "gpt2" && model != "llama" {
        return Err(ferr(
            f,
            format!(
                "tokenizer.ggml.model is '{model}'; plumb builds byte-level BPE ('gpt2') and SentencePiece BPE ('llama') tokenizers from GGUF (put a tokenizer.json next to the file for others)"
            ),
        ));
    }
    let tokens = array(f, "tokenizer.ggml.tokens", "a string", GgufValue::as_str)?
        .ok_or_else(|| ferr(f, "no tokenizer.ggml.tokens in the metadata"))?;
    let n = tokens.len();
    let types = per_token(f, "tokenizer.ggml.token_type", "an integer", n, |v| {
        v.as_i64()
    })?
    .unwrap_or_else(|| vec![NORMAL; n]);
    let id = |key: &str| -> Option<u32> {
        let v = f.meta(key)?;
        match v.as_i64() {
            Some(i) if i >= 0 && (i as u64) < n as u64 => Some(i as u32),
            // -1 (or its u32 spelling) means "none"
            Some(-1) | Some(0xffff_ffff) => None,
            _ => {
                tracing::warn!(file = %f.path().display(),
                    "{key} = {} is not a token id below {n}; ignored", v.short());
                None
            }
        }
    };
    let flag = |key: &str| f.meta(key).and_then(|v| v.as_i64()).map(|v| v != 0);
    let bos_id = id("tokenizer.ggml.bos_token_id");
    let eos_id = id("tokenizer.ggml.eos_token_id");
    let unk_id = id("tokenizer.ggml.unknown_token_id");
    let pad_id = id("tokenizer.ggml.padding_token_id");
    // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise
    let add_bos =
        flag("tokenizer.ggml.add_bos_token").unwrap_or(model == "llama") && bos_id.is_some();
    let add_eos = flag("tokenizer.ggml.add_eos_token").unwrap_or(false) && eos_id.is_some();

    let mut vocab = serde_json::Map::with_capacity(n);
    let mut added = Vec::new();
    for (i, (t, &ty)) in tokens.iter().zip(&types).enumerate() {
        vocab.insert(t.to_string(), json!(i));
        // control and user-defined tokens are matched literally in text, never split; so is the
        // unknown token of a SentencePiece vocabulary (llama.cpp and transformers both do)
        let special = ty == CONTROL || (model == "llama" && ty == UNKNOWN);
        if special || ty == USER_DEFINED {
            added.push(json!({
                "id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": special,
            }));
        }
    }
    let merges = array(f, "tokenizer.ggml.merges", "a string", GgufValue::as_str)?;
    let mut spec = if model == "gpt2" {
        let merges =
            merges.ok_or_else(|| ferr(f, "a 'gpt2' vocabulary needs tokenizer.ggml.merges"))?;
        byte_level(f, vocab, &merges)
    } else {
        let scores = per_token(f, "tokenizer.ggml.scores", "a float", n, |v| match v {
            GgufValue::F32(x) => Some(*x),
            GgufValue::F64(x) => Some(*x as f32),
            _ => None,
        })?
        .ok_or_else(|| {
            ferr(
                f,
                "a 'llama' (SentencePiece) vocabulary needs tokenizer.ggml.scores",
            )
        })?;
        let merges: Vec<(String, String)> = match merges {
            Some(m) => m
                .iter()
                .map(|m| {
                    m.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| ferr(f, format!("merge {m:?} is not two tokens")))
                })
                .collect::<Result<_>>()?,
            None => spm_merges(&tokens, &scores),
        };
        let unk = unk_id
            .or_else(|| types.iter().position(|&t| t == UNKNOWN).map(|i| i as u32))
            .map(|i| tokens[i as usize]);
        let prefix = flag("tokenizer.ggml.add_space_prefix").unwrap_or(true);
        sentencepiece(vocab, &merges, unk, prefix)
    };
    spec["added_tokens"] = json!(added);
    if add_bos || add_eos {
        let tok = |i: Option<u32>, on: bool| on.then(|| i.map(|i| tokens[i as usize])).flatten();
        let template = template(tok(bos_id, add_bos), tok(eos_id, add_eos), bos_id, eos_id);
        spec["post_processor"] = if model == "gpt2" {
            json!({"type": "Sequence", "processors": [spec["post_processor"].take(), template]})
        } else {
            template
        };
    }
    let inner: tokenizers::Tokenizer = serde_json::from_value(spec).map_err(|e| ferr(f, e))?;
    Ok(GgufTokenizer {
        inner,
        bos_id,
        eos_id,
        pad_id,
        add_bos,
    })
}

/// Byte-level BPE (`gpt2`), split by the regex `tokenizer.ggml.pre` names.
fn byte_level(f: &GgufFile, vocab: serde_json::Map<String, Value>, merges: &[&str]) -> Value {
    let pre = f
        .meta("tokenizer.ggml.pre")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": true, "use_regex": true});
    let split = |re: &str| {
        json!({
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                 "use_regex": false},
            ],
        })
    };
    let pre_tokenizer = match pre {
        "smollm" | "starcoder" | "refact" | "codeshell" => json!({
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level],
        }),
        "llama-bpe" | "llama3" | "llama-v3" | "falcon3" | "pixtral" | "dbrx" | "smaug-bpe" => {
            split(LLAMA3_SPLIT)
        }
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2_SPLIT),
        "default" | "gpt2" | "gpt-2" => byte_level,
        other => {
            tracing::warn!(
                file = %f.path().display(),
                "tokenizer.ggml.pre '{other}' is not known to plumb; using the GPT-2 byte-level split"
            );
            byte_level
        }
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true,
                           "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true,
                    "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

/// SentencePiece BPE (`llama`), as LlamaTokenizerFast's `tokenizer.json` has it.
fn sentencepiece(
    vocab: serde_json::Map<String, Value>,
    merges: &[(String, String)],
    unk: Option<&str>,
    add_space_prefix: bool,
) -> Value {
    let mut normalizer = Vec::new();
    let mut decoder = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_space_prefix {
        normalizer.push(json!({"type": "Prepend", "prepend": "▁"}));
        decoder.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    normalizer.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "normalizer": {"type": "Sequence", "normalizers": normalizer},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoder},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

/// A post-processor adding `bos` before and `eos` after each sequence.
fn template(
    bos: Option<&str>,
    eos: Option<&str>,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
) -> Value {
    let seq = |id: &str, type_id: u32| {
        let mut v = Vec::new();
        if let Some(b) = bos {
            v.push(json!({"SpecialToken": {"id": b, "type_id": type_id}}));
        }
        v.push(json!({"Sequence": {"id": id, "type_id": type_id}}));
        if let Some(e) = eos {
            v.push(json!({"SpecialToken": {"id": e, "type_id": type_id}}));
        }
        v
    };
    let mut pair = seq("A", 0);
    pair.extend(seq("B", 1));
    let mut specials = serde_json::Map::new();
    for (t, i) in [(bos, bos_id), (eos, eos_id)] {
        if let (Some(t), Some(i)) = (t, i) {
            specials.insert(t.to_string(), json!({"id": t, "ids": [i], "tokens": [t]}));
        }
    }
    json!({"type": "TemplateProcessing", "single": seq("A", 0), "pair": pair,
           "special_tokens": specials})
}

/// The merges a SentencePiece BPE vocabulary implies: every split of a token into two tokens,
/// best score of the merged token first (ties: longer left part, then longer right part, then
/// vocabulary order), as transformers' `generate_merges` orders them.
pub fn spm_merges(tokens: &[&str], scores: &[f32]) -> Vec<(String, String)> {
    // the last id of a token spelled twice, as a dict built from the list has it
    let index: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let mut seen = std::collections::HashSet::with_capacity(tokens.len());
    let mut merges: Vec<(&str, &str, f32, usize, usize)> = Vec::new();
    for &t in tokens {
        if !seen.insert(t) {
            continue;
        }
        let score = scores[index[t]];
        let mut local: Vec<(&str, &str, usize, usize)> = t
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (l, r) = t.split_at(at);
                Some((l, r, *index.get(l)?, *index.get(r)?))
            })
            .collect();
        local.sort_by_key(|&(_, _, il, ir)| (il, ir));
        merges.extend(
            local
                .into_iter()
                .map(|(l, r, _, _)| (l, r, score, l.chars().count(), r.chars().count())),
        );
    }
    // stable, so equal keys keep the order above
    merges.sort_by(|a, b| {
        b.2.partial_cmp(&a.2)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.3.cmp(&a.3))
            .then(b.4.cmp(&a.4))
    });
    merges
        .into_iter()
        .map(|(l, r, ..)| (l.to_string(), r.to_string()))
        .collect()
}
