//! Tokenizers: `tokenizer.json` through the `tokenizers` crate, and the BPE vocabulary and merges
//! embedded in GGUF metadata (`tokenizer.ggml.*`) turned into the same kind of tokenizer.

use crate::gguf::{GgufFile, GgufValue};
use plumb_core::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A text tokenizer plus the special token ids a model needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// where it came from (for error messages)
    pub source: PathBuf,
    pub bos_id: Option<u32>,
    pub eos_ids: Vec<u32>,
    pub pad_id: Option<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.source.display())
    }
}

/// One batch of encoded texts, padded to the longest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// [batch × seq] row-major
    pub ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding
    pub mask: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
}

fn terr(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("tokenizer: {e}"))
}

impl Tokenizer {
    /// Load `tokenizer.json`. Its own padding and truncation settings are switched off: callers
    /// pad per batch (with an attention mask) and truncate with [`Tokenizer::encode_batch`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let mut inner = tokenizers::Tokenizer::from_file(path).map_err(|e| terr(path, e))?;
        let pad_id = inner.get_padding().map(|p| p.pad_id);
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| terr(path, e))?;
        let find = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let bos_id = find(&["<s>", "<|begin_of_text|>", "[CLS]"]);
        let eos_ids = find(&[
            "</s>",
            "<|end_of_text|>",
            "<|eot_id|>",
            "<|im_end|>",
            "[SEP]",
        ])
        .into_iter()
        .collect();
        let pad_id = pad_id.or_else(|| find(&["[PAD]", "<pad>"]));
        Ok(Tokenizer {
            inner,
            source: path.to_path_buf(),
            bos_id,
            eos_ids,
            pad_id,
        })
    }

    /// Build a byte-level BPE tokenizer from GGUF metadata (`tokenizer.ggml.model == "gpt2"`).
    /// The pre-tokenizer follows `tokenizer.ggml.pre`: `smollm` (and other StarCoder-style
    /// vocabularies) split digits one by one before the GPT-2 byte-level split.
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer> {
        let path = f.path();
        let model = f.require("tokenizer.ggml.model")?.as_str().unwrap_or("");
        if model != "gpt2" {
            return Err(Error::format(
                path,
                format!(
                    "tokenizer.ggml.model is '{model}'; plumb builds byte-level BPE ('gpt2') tokenizers from GGUF (put a tokenizer.json next to the file for others)"
                ),
            ));
        }
        let strings = |key: &str| -> Result<Vec<&str>> {
            f.require(key)?
                .as_array()
                .ok_or_else(|| Error::format(path, format!("{key} is not an array")))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| Error::format(path, format!("{key} has a non-string entry")))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Vec<i64> = match f.meta("tokenizer.ggml.token_type") {
            Some(GgufValue::Array(a)) => a.iter().map(|v| v.as_i64().unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            vocab.insert(t.to_string(), json!(i));
            // 3 = control, 4 = user defined: matched literally in text, never split
            if matches!(types.get(i), Some(3) | Some(4)) {
                added.push(json!({
                    "id": i, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": types.get(i) == Some(&3),
                }));
            }
        }
        let pre = f
            .meta("tokenizer.ggml.pre")
            .and_then(|v| v.as_str())
            .unwrap_or("default");
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                                "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = match pre {
            "smollm" | "starcoder" | "refact" | "codeshell" => json!({
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level],
            }),
            "default" | "gpt2" | "gpt-2" => byte_level.clone(),
            other => {
                tracing::warn!(
                    file = %path.display(),
                    "tokenizer.ggml.pre '{other}' is not known to plumb; using the GPT-2 byte-level split"
                );
                byte_level.clone()
            }
        };
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
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
        });
        let inner: tokenizers::Tokenizer =
            serde_json::from_value(spec).map_err(|e| terr(path, e))?;
        let id = |key: &str| {
            f.meta(key)
                .and_then(|v| v.as_i64())
                .and_then(|v| u32::try_from(v).ok())
                .filter(|&v| (v as usize) < tokens.len())
        };
        let mut eos_ids: Vec<u32> = id("tokenizer.ggml.eos_token_id").into_iter().collect();
        // chat models end a turn with <|im_end|> / <|eot_id|> even when eos names another token
        for extra in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"] {
            if let Some(i) = inner.token_to_id(extra) {
                if !eos_ids.contains(&i) {
                    eos_ids.push(i);
                }
            }
        }
        Ok(Tokenizer {
            inner,
            source: path.to_path_buf(),
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_ids,
            pad_id: id("tokenizer.ggml.padding_token_id"),
        })
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Ids of `text`; `special` adds the model's special tokens ([CLS] … [SEP] for BERT).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, special)
            .map_err(|e| terr(&self.source, e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encode texts with special tokens, truncate each to `max_len` (keeping the final special
    /// token, as the tokenizers crate's truncation does), and pad to the longest.
    pub fn encode_batch(&self, texts: &[&str], max_len: usize) -> Result<Batch> {
        let mut rows = Vec::with_capacity(texts.len());
        for t in texts {
            let mut enc = self
                .inner
                .encode(*t, false)
                .map_err(|e| terr(&self.source, e))?;
            let added = self
                .inner
                .get_post_processor()
                .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
            let keep = max_len.saturating_sub(added);
            if enc.len() > keep {
                enc.truncate(keep, 0, tokenizers::TruncationDirection::Right);
            }
            let enc = self
                .inner
                .post_process(enc, None, true)
                .map_err(|e| terr(&self.source, e))?;
            rows.push(enc.get_ids().to_vec());
        }
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let pad = self.pad_id.unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut mask = Vec::with_capacity(rows.len() * seq);
        for r in &rows {
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(pad, seq - r.len()));
            mask.extend(std::iter::repeat_n(1, r.len()));
            mask.extend(std::iter::repeat_n(0, seq - r.len()));
        }
        Ok(Batch {
            ids,
            mask,
            batch: rows.len(),
            seq,
        })
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| terr(&self.source, e))
    }

    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.contains(&id)
    }
}

/// Decodes a growing token sequence into text pieces as they become complete UTF-8
/// (byte-level BPE tokens may split a character across tokens).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    printed: usize,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a token; returns the new text, if any is complete.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let text = tok.decode(&self.ids, true)?;
        if text.ends_with('\u{fffd}') || text.len() <= self.printed {
            return Ok(None);
        }
        let Some(new) = text.get(self.printed..) else {
            return Ok(None);
        };
        let new = new.to_string();
        self.printed = text.len();
        Ok(Some(new))
    }
}
