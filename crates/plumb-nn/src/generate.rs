//! Text generation: sampling (greedy, temperature, top-k, top-p, seeded) and the loop that runs a
//! Llama model with its tokenizer and chat template.

use crate::chat::{ChatTemplate, Message};
use crate::config::{HfConfig, ModelFiles};
use crate::models::llama::{KvCache, Llama, LlamaConfig};
use crate::tokenizer::Tokenizer;
use crate::weights::{WeightFile, Weights};
use plumb_core::rng::SplitMix64;
use plumb_core::{DType, Device, Error, Result};
use std::time::Instant;

/// How the next token is picked. `temperature == 0` is greedy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub seed: u64,
}

impl SamplingParams {
    /// Every setting in range (see [`check_temperature`], [`check_top_p`]).
    pub fn check(&self) -> Result<()> {
        check_temperature(self.temperature)?;
        if let Some(p) = self.top_p {
            check_top_p(p)?;
        }
        Ok(())
    }
}

/// A temperature: finite and not negative (0 picks the likeliest token).
pub fn check_temperature(t: f64) -> Result<f64> {
    if t.is_finite() && t >= 0.0 {
        return Ok(t);
    }
    Err(Error::invalid(
        "sampling",
        format!("{t} is not a temperature (a number ≥ 0; 0 = greedy)"),
    ))
}

/// A top-p: a probability above 0, at most 1 (1 keeps every token).
pub fn check_top_p(p: f64) -> Result<f64> {
    if p > 0.0 && p <= 1.0 {
        return Ok(p);
    }
    Err(Error::invalid(
        "sampling",
        format!("top-p {p} is not a probability in (0, 1]"),
    ))
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }
}

pub struct Sampler {
    params: SamplingParams,
    rng: SplitMix64,
}

/// Index of the largest value (the first one on ties, like torch.argmax).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

impl Sampler {
    /// A sampler drawing with `params`, which must be in range ([`SamplingParams::check`]: a
    /// NaN temperature or a top-p of 2 is an error, not a silent greedy or unfiltered draw).
    pub fn new(params: SamplingParams) -> Result<Sampler> {
        params.check()?;
        Ok(Sampler {
            params,
            rng: SplitMix64::new(params.seed),
        })
    }

    /// The next token: the likeliest at temperature 0 (or `top_k` 1), else a draw from
    /// softmax(logits / temperature) over the `top_k` likeliest tokens and, of those, the
    /// likeliest whose probabilities reach `top_p`. Only as much of the vocabulary is ordered as
    /// these need: top-k is a selection, top-p sorts a block of the likeliest tokens that grows
    /// until its mass reaches p, and temperature alone sorts nothing. (A full sort of SmolLM2's
    /// 49,152 logits per token held `plumb generate` at 141–167 tok/s at temperature 0.8 on the
    /// 2-core build machine, 160–231 without it: BENCHMARKS.md, "Sampling".)
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let p = self.params;
        if p.temperature <= 0.0 || p.top_k == Some(1) {
            return argmax(logits) as u32;
        }
        let mut idx: Vec<usize> = (0..logits.len())
            .filter(|&i| logits[i].is_finite())
            .collect();
        if idx.is_empty() {
            return argmax(logits) as u32;
        }
        let desc = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]);
        if let Some(k) = p.top_k.filter(|&k| k > 0 && k < idx.len()) {
            idx.select_nth_unstable_by(k - 1, desc);
            idx.truncate(k);
        }
        // unnormalised probabilities, by token id (those of non-finite logits are never read)
        let max = idx
            .iter()
            .map(|&i| logits[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let inv_t = (1.0 / p.temperature) as f32;
        let w: Vec<f32> = logits
            .iter()
            .map(|&l| plumb_core::math::exp_f32((l - max) * inv_t))
            .collect();
        let mass = |ids: &[usize]| ids.iter().map(|&i| w[i] as f64).sum::<f64>();
        if let Some(top_p) = p.top_p.filter(|&t| t < 1.0) {
            let total = mass(&idx);
            let mut m = 64.min(idx.len());
            loop {
                // the m likeliest first, in descending order
                if m < idx.len() {
                    idx.select_nth_unstable_by(m - 1, desc);
                }
                idx[..m].sort_by(desc);
                let mut acc = 0.0;
                let keep = idx[..m].iter().position(|&i| {
                    acc += w[i] as f64;
                    acc >= top_p * total
                });
                match keep {
                    Some(j) => {
                        idx.truncate(j + 1);
                        break;
                    }
                    // every token, and rounding kept the sum just short of p: keep them all
                    None if m == idx.len() => break,
                    None => m = (4 * m).min(idx.len()),
                }
            }
        }
        let r = self.rng.next_f64() * mass(&idx);
        let mut acc = 0.0;
        for &i in &idx {
            acc += w[i] as f64;
            if r < acc {
                return i as u32;
            }
        }
        idx[idx.len() - 1] as u32
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stop {
    /// `max_tokens` were generated (or none were asked for)
    #[default]
    MaxTokens,
    /// the model wrote an end-of-turn token
    EndOfTurn,
    /// every position of the model's context holds a token (its `max_position_embeddings`)
    ContextFull,
}

/// Timing of one generation, and why it ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenStats {
    pub prompt_tokens: usize,
    pub prompt_secs: f64,
    pub generated: usize,
    pub decode_secs: f64,
    pub stop: Stop,
}

impl GenStats {
    pub fn prefill_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_secs.max(1e-9)
    }
    /// Decode rate over the tokens after the first (the first comes out of the prefill).
    pub fn decode_tok_s(&self) -> f64 {
        self.generated.saturating_sub(1) as f64 / self.decode_secs.max(1e-9)
    }
}

/// Tokenizer + Llama + chat template.
pub struct TextGenerator {
    pub tokenizer: Tokenizer,
    pub model: Llama,
    pub chat: Option<ChatTemplate>,
    /// the dtype [`TextGenerator::generate`] keeps its KV cache in (`None`: the model's
    /// compute dtype; see [`KvCache::with_dtype`])
    pub kv_dtype: Option<DType>,
}

impl TextGenerator {
    /// Load from GGUF (config, tokenizer, template from its metadata unless a tokenizer.json
    /// sits next to it) or a Hugging Face folder (config.json, tokenizer.json,
    /// tokenizer_config.json).
    pub fn load(files: &ModelFiles, weights: &Weights) -> Result<TextGenerator> {
        let (config, tokenizer, chat) = match weights.file() {
            WeightFile::Gguf(g) => {
                let tok = match &files.tokenizer {
                    Some(t) => Tokenizer::from_file(t)?,
                    None => Tokenizer::from_gguf(g)?,
                };
                (LlamaConfig::from_gguf(g)?, tok, ChatTemplate::from_gguf(g)?)
            }
            WeightFile::Safetensors(_) => {
                let cfg = files.config.as_ref().ok_or_else(|| {
                    Error::format(
                        &files.dir,
                        "a Llama model needs config.json next to its weights",
                    )
                })?;
                let tok = files.tokenizer.as_ref().ok_or_else(|| {
                    Error::format(&files.dir, "no tokenizer.json next to the weights")
                })?;
                let chat = ChatTemplate::from_tokenizer_config(
                    files.tokenizer_config.as_deref(),
                    files.chat_template.as_deref(),
                )?;
                (
                    LlamaConfig::from_hf(&HfConfig::load(cfg)?)?,
                    Tokenizer::from_file(tok)?,
                    chat,
                )
            }
        };
        let model = Llama::load(&config, weights)?;
        Ok(TextGenerator {
            tokenizer,
            model,
            chat,
            kv_dtype: None,
        })
    }

    /// Use `t` (for example [`ChatTemplate::from_file`]) instead of the model's own chat
    /// template (llama.cpp's `--chat-template-file`). It sees the special tokens the model's
    /// template saw, else the tokenizer's BOS and first end-of-turn token.
    pub fn set_chat_template(&mut self, mut t: ChatTemplate) {
        let inner = self.tokenizer.inner();
        let own = |id: Option<u32>| id.and_then(|i| inner.id_to_token(i));
        for (name, tok) in [
            ("bos_token", own(self.tokenizer.bos_id)),
            ("eos_token", own(self.tokenizer.eos_ids.first().copied())),
        ] {
            if let Some(tok) = tok {
                t = t.with_special_token(name, &tok);
            }
        }
        if let Some(old) = &self.chat {
            for (name, text) in old.special_tokens() {
                t = t.with_special_token(name, text);
            }
        }
        self.chat = Some(t);
    }

    /// Token ids of `prompt`, through the chat template when `chat`.
    pub fn prompt_ids(&self, prompt: &str, chat: bool) -> Result<Vec<u32>> {
        if chat {
            return self.chat_ids(&[Message::new("user", prompt)]);
        }
        let mut ids = self.tokenizer.encode(prompt, false)?;
        // a plain prompt starts with BOS where the tokenizer adds one (llama.cpp and
        // transformers do), and an empty one always
        if let Some(b) = self.tokenizer.bos_id {
            if ids.is_empty() || (self.tokenizer.add_bos && ids.first() != Some(&b)) {
                ids.insert(0, b);
            }
        }
        Ok(ids)
    }

    /// Token ids of a conversation through the model's chat template, opening the assistant's
    /// turn (see [`chat_ids`]).
    pub fn chat_ids(&self, messages: &[Message]) -> Result<Vec<u32>> {
        chat_ids(&self.tokenizer, self.template()?, messages)
    }

    /// [`TextGenerator::chat_ids`] of messages as JSON (any fields, as transformers takes them)
    /// with the `tools` and `documents` the template may render ([`ChatTemplate::render_with`]).
    pub fn chat_ids_with(
        &self,
        messages: &serde_json::Value,
        tools: Option<&serde_json::Value>,
        documents: Option<&serde_json::Value>,
    ) -> Result<Vec<u32>> {
        let text = self
            .template()?
            .render_with(messages, tools, documents, true)?;
        self.tokenizer.encode(&text, false)
    }

    fn template(&self) -> Result<&ChatTemplate> {
        self.chat.as_ref().ok_or_else(|| {
            Error::format(
                &self.tokenizer.source,
                "--chat: the model has no chat template",
            )
        })
    }

    /// Generate up to `max_tokens` after `prompt`, calling `on_token` with each new id as soon
    /// as it is picked. Stops at an end-of-turn token when `stop_at_eos`, and where the model's
    /// context is full ([`Llama::context_limit`]); a prompt longer than that context is an
    /// error, as in llama.cpp (positions past it were never trained, and the output would be
    /// noise without a word said).
    pub fn generate(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        sampler: &mut Sampler,
        stop_at_eos: bool,
        dev: &Device,
        on_token: &mut dyn FnMut(u32) -> Result<()>,
    ) -> Result<GenStats> {
        let mut cache = KvCache::with_dtype(self.model.config.num_hidden_layers, self.kv_dtype)?;
        let mut stats = GenStats {
            prompt_tokens: prompt.len(),
            ..Default::default()
        };
        let limit = self.model.context_limit();
        if let Some(limit) = limit.filter(|&l| prompt.len() > l) {
            return Err(Error::invalid(
                "generate",
                format!(
                    "the prompt is {} tokens, and the model's context holds {limit} positions \
                     (max_position_embeddings in config.json, context_length in GGUF); shorten \
                     the prompt",
                    prompt.len()
                ),
            ));
        }
        if max_tokens == 0 {
            return Ok(stats);
        }
        let t0 = Instant::now();
        let logits = self
            .model
            .forward(prompt, &mut cache, dev, false)?
            .to_vec::<f32>()?;
        stats.prompt_secs = t0.elapsed().as_secs_f64();
        let mut next = sampler.sample(&logits);
        let t1 = Instant::now();
        loop {
            stats.generated += 1;
            on_token(next)?;
            if stop_at_eos && self.tokenizer.is_eos(next) {
                stats.stop = Stop::EndOfTurn;
                break;
            }
            if stats.generated >= max_tokens {
                break;
            }
            if limit.is_some_and(|l| cache.len >= l) {
                stats.stop = Stop::ContextFull;
                break;
            }
            let logits = self
                .model
                .forward(&[next], &mut cache, dev, false)?
                .to_vec::<f32>()?;
            next = sampler.sample(&logits);
        }
        stats.decode_secs = t1.elapsed().as_secs_f64();
        Ok(stats)
    }
}

/// Token ids of `messages` rendered by `template` with the generation prompt, encoded as
/// transformers' `apply_chat_template(tokenize=True)` encodes it: without the tokenizer's own
/// special tokens (`add_special_tokens=False`). A template that wants BOS writes `{{ bos_token }}`
/// itself (Llama-3, Llama-2, Mistral, Gemma), so BOS is neither doubled nor added to templates
/// that leave it out (ChatML).
pub fn chat_ids(
    tok: &Tokenizer,
    template: &ChatTemplate,
    messages: &[Message],
) -> Result<Vec<u32>> {
    let text = template.render(messages, true)?;
    tok.encode(&text, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> Sampler {
        Sampler::new(SamplingParams {
            temperature,
            top_k,
            top_p,
            seed: 7,
        })
        .unwrap()
    }

    /// Settings out of range are errors naming them; 0 and 1 are the ends of the ranges.
    #[test]
    fn settings_out_of_range_are_errors() {
        let with = |temperature: f64, top_p: Option<f64>| {
            Sampler::new(SamplingParams {
                temperature,
                top_p,
                ..SamplingParams::default()
            })
        };
        for t in [f64::NAN, -0.5, f64::INFINITY] {
            let m = with(t, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(m.contains("is not a temperature"), "{t}: {m}");
        }
        for p in [0.0, 1.5, f64::NAN] {
            let m = with(1.0, Some(p))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(m.contains("is not a probability"), "{p}: {m}");
        }
        assert!(with(0.0, Some(1.0)).is_ok());
    }

    /// Temperature 0 and top-k 1 pick the first largest logit.
    #[test]
    fn greedy_is_the_argmax() {
        let logits = [0.5, 3.0, -1.0, 3.0, f32::NAN];
        assert_eq!(sampler(0.0, None, None).sample(&logits), 1);
        assert_eq!(sampler(1.0, Some(1), Some(0.5)).sample(&logits), 1);
    }

    /// 20,000 draws at temperature 2 land on each token as often as softmax(logits / 2) says
    /// (within 0.015), never on a -inf or NaN logit.
    #[test]
    fn draws_follow_the_softmax() {
        let logits = [2.0f32, 1.0, 0.5, -1.0, f32::NEG_INFINITY, f32::NAN];
        let z: f64 = logits[..4].iter().map(|&l| (l as f64 / 2.0).exp()).sum();
        let mut s = sampler(2.0, None, None);
        let mut counts = [0usize; 6];
        let n = 20_000;
        for _ in 0..n {
            counts[s.sample(&logits) as usize] += 1;
        }
        for i in 0..4 {
            let want = (logits[i] as f64 / 2.0).exp() / z;
            let got = counts[i] as f64 / n as f64;
            assert!((got - want).abs() < 0.015, "token {i}: {got} vs {want}");
        }
        assert_eq!(counts[4] + counts[5], 0);
    }

    /// A 49,152-token vocabulary whose probabilities fall off slowly, in shuffled order: top-k
    /// draws come from the k likeliest; top-p draws from the smallest set of likeliest tokens
    /// whose probabilities reach p, computed here by a full sort in f64 (about 460 tokens, so
    /// the sampler's block of likeliest tokens grows twice); both reach past its first block.
    #[test]
    fn top_k_and_top_p_keep_the_likeliest_tokens() {
        let v = 49_152;
        let mut rng = SplitMix64::new(3);
        let mut order: Vec<usize> = (0..v).collect();
        for i in (1..v).rev() {
            order.swap(i, rng.next_u64() as usize % (i + 1));
        }
        // rank r (0 = likeliest) sits at token order[r]
        let mut logits = vec![0f32; v];
        for (r, &t) in order.iter().enumerate() {
            logits[t] = -0.005 * r as f32;
        }
        let rank_of = |t: u32| order.iter().position(|&x| x == t as usize).unwrap();
        let mut s = sampler(1.0, Some(300), None);
        let ranks: Vec<usize> = (0..2000).map(|_| rank_of(s.sample(&logits))).collect();
        assert!(ranks.iter().all(|&r| r < 300), "top-k 300");
        assert!(
            ranks.iter().any(|&r| r >= 64),
            "top-k draws past the first block"
        );
        let z: f64 = (0..v).map(|r| (-0.005 * r as f64).exp()).sum();
        let mut acc = 0.0;
        let nucleus = (0..v)
            .position(|r| {
                acc += (-0.005 * r as f64).exp() / z;
                acc >= 0.9
            })
            .unwrap()
            + 1;
        assert!((400..500).contains(&nucleus), "{nucleus}");
        let mut s = sampler(1.0, None, Some(0.9));
        let ranks: Vec<usize> = (0..2000).map(|_| rank_of(s.sample(&logits))).collect();
        // one token of slack at the edge, where f32 and f64 sums may round apart
        assert!(
            ranks.iter().all(|&r| r <= nucleus),
            "top-p 0.9: nucleus {nucleus}"
        );
        assert!(
            ranks.iter().any(|&r| r >= 256),
            "top-p draws past the second block"
        );
    }
}
