//! Tokenizers: `tokenizer.json` through the `tokenizers` crate, and the vocabulary embedded in
//! GGUF metadata (`tokenizer.ggml.*`) turned into the same kind of tokenizer (tokenizer_gguf.rs).

use crate::gguf::GgufFile;
use plumb_core::{Error, Result};
use std::path::{Path, PathBuf};

/// A text tokenizer plus the special token ids a model needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// where it came from (for error messages)
    pub source: PathBuf,
    pub bos_id: Option<u32>,
    pub eos_ids: Vec<u32>,
    pub pad_id: Option<u32>,
    /// `encode(text, true)` starts with `bos_id` (the model wants BOS before a prompt: SentencePiece
    /// Llamas, Llama-3; not ChatML models)
    pub add_bos: bool,
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

/// Append the end-of-turn and end-of-text tokens the vocabulary has to `eos_ids` (after the
/// model's own end token, which stays first): chat models end a turn with <|im_end|> /
/// <|eot_id|> even when eos names another token, and Qwen2 base models end with <|endoftext|>
/// (llama.cpp stops at all of them).
fn add_end_of_turn(inner: &tokenizers::Tokenizer, eos_ids: &mut Vec<u32>) {
    for extra in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"] {
        if let Some(i) = inner.token_to_id(extra) {
            if !eos_ids.contains(&i) {
                eos_ids.push(i);
            }
        }
    }
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
        let mut eos_ids: Vec<u32> = find(&[
            "</s>",
            "<|end_of_text|>",
            "<|eot_id|>",
            "<|im_end|>",
            "[SEP]",
        ])
        .into_iter()
        .collect();
        add_end_of_turn(&inner, &mut eos_ids);
        let pad_id = pad_id.or_else(|| find(&["[PAD]", "<pad>"]));
        // whether the post-processor puts BOS first
        let add_bos = bos_id.is_some()
            && inner
                .encode("", true)
                .is_ok_and(|e| e.get_ids().first().copied() == bos_id);
        Ok(Tokenizer {
            inner,
            source: path.to_path_buf(),
            bos_id,
            eos_ids,
            pad_id,
            add_bos,
        })
    }

    /// Build the tokenizer a GGUF file describes in its metadata: byte-level BPE
    /// (`tokenizer.ggml.model == "gpt2"`, split as `tokenizer.ggml.pre` says) or SentencePiece
    /// BPE (`"llama"`: Llama-2, TinyLlama, Mistral); see [`crate::tokenizer_gguf`].
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer> {
        let built = crate::tokenizer_gguf::build(f)?;
        let inner = built.inner;
        let mut eos_ids: Vec<u32> = built.eos_id.into_iter().collect();
        add_end_of_turn(&inner, &mut eos_ids);
        Ok(Tokenizer {
            inner,
            source: f.path().to_path_buf(),
            bos_id: built.bos_id,
            eos_ids,
            pad_id: built.pad_id,
            add_bos: built.add_bos,
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
        Ok(self.pad(&self.encode_rows(texts, max_len)?))
    }

    /// The ids of each text with special tokens, truncated to `max_len` as
    /// [`Tokenizer::encode_batch`] does, unpadded.
    pub fn encode_rows(&self, texts: &[&str], max_len: usize) -> Result<Vec<Vec<u32>>> {
        let added = self
            .inner
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        let keep = max_len.saturating_sub(added);
        texts
            .iter()
            .map(|t| {
                let mut enc = self
                    .inner
                    .encode(*t, false)
                    .map_err(|e| terr(&self.source, e))?;
                if enc.len() > keep {
                    enc.truncate(keep, 0, tokenizers::TruncationDirection::Right);
                }
                let enc = self
                    .inner
                    .post_process(enc, None, true)
                    .map_err(|e| terr(&self.source, e))?;
                Ok(enc.get_ids().to_vec())
            })
            .collect()
    }

    /// Rows of ids padded to the longest, with the attention mask.
    pub fn pad<R: AsRef<[u32]>>(&self, rows: &[R]) -> Batch {
        let seq = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
        let pad = self.pad_id.unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut mask = Vec::with_capacity(rows.len() * seq);
        for r in rows {
            let r = r.as_ref();
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(pad, seq - r.len()));
            mask.extend(std::iter::repeat_n(1, r.len()));
            mask.extend(std::iter::repeat_n(0, seq - r.len()));
        }
        Batch {
            ids,
            mask,
            batch: rows.len(),
            seq,
        }
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
