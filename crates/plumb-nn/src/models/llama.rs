//! Llama family decoders (SmolLM2, TinyLlama-, Llama-2/3-shaped, Qwen2/Qwen2.5): RMSNorm, RoPE,
//! grouped-query attention with optional projection biases, SwiGLU MLP, tied embeddings, KV
//! cache. One implementation for float and quantized weights: matrices go through
//! [`Tensor::linear`] (a quantized matmul, or a float matmul with its bias fused).
//!
//! Qwen2 is this architecture with biases on the q, k and v projections (transformers'
//! `Qwen2Attention`); a Llama config with `attention_bias: true` has them on q, k, v and o.
//!
//! Weights come with either naming: GGUF (`token_embd`, `blk.N.attn_q`, …) or Hugging Face
//! (`model.embed_tokens`, `model.layers.N.self_attn.q_proj`, …). llama.cpp's converter permutes
//! the Q and K rows (and bias entries) of each head of a Llama for the interleaved RoPE layout,
//! so Llama GGUF weights use `rope(interleaved = true)`; it leaves Qwen2's rows as Hugging Face
//! stores them (llama.cpp runs qwen2 with NEOX, rotate-half RoPE), so those rotate halves, as
//! Hugging Face weights do. Every pairing gives the same result.

use super::rope::{self, RopeScaling};
use crate::config::HfConfig;
use crate::gguf::GgufFile;
use crate::weights::Weights;
use plumb_core::{DType, Device, Error, Result, Tensor};
use serde_json::Value;

/// The architecture a checkpoint declares: Llama (and Mistral, which llama.cpp converts as a
/// Llama) or Qwen2. Beyond Qwen2's q/k/v biases, it decides how a GGUF lays out the Q/K rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlamaArch {
    Llama,
    Qwen2,
}

impl LlamaArch {
    /// The name `plumb check` shows.
    pub fn display_name(self) -> &'static str {
        match self {
            LlamaArch::Llama => "Llama",
            LlamaArch::Qwen2 => "Qwen2",
        }
    }

    /// GGUF's `general.architecture` (and prefix of its metadata keys).
    pub fn gguf_name(self) -> &'static str {
        match self {
            LlamaArch::Llama => "llama",
            LlamaArch::Qwen2 => "qwen2",
        }
    }

    /// config.json's `model_type` and `architectures` entry.
    pub fn hf_names(self) -> (&'static str, &'static str) {
        match self {
            LlamaArch::Llama => ("llama", "LlamaForCausalLM"),
            LlamaArch::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
        }
    }

    /// Whether llama.cpp's convert_hf_to_gguf.py permutes this architecture's Q/K rows for the
    /// interleaved RoPE layout (`LlamaModel.permute`, weights and biases): it does for Llama
    /// and Mistral, not for Qwen2, which llama.cpp runs with NEOX (rotate-half) RoPE.
    pub fn gguf_permutes_qk(self) -> bool {
        self == LlamaArch::Llama
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub arch: LlamaArch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// how the RoPE frequencies are rescaled (Llama 3.1, linear, GGUF's rope_freqs.weight)
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// the q, k and v projections carry biases (always in Qwen2; in a Llama with
    /// `attention_bias`), which the checkpoint must hold; the o projection's bias is read where
    /// the checkpoint has one (a Llama with `attention_bias` has it, Qwen2 has none)
    pub attention_bias: bool,
}

impl LlamaConfig {
    /// From GGUF metadata (`{arch}.*` keys).
    pub fn from_gguf(f: &GgufFile) -> Result<LlamaConfig> {
        let arch = f
            .require("general.architecture")?
            .as_str()
            .unwrap_or("")
            .to_string();
        let family = match arch.as_str() {
            "llama" | "mistral" => LlamaArch::Llama,
            "qwen2" => LlamaArch::Qwen2,
            _ => {
                return Err(Error::format(
                    f.path(),
                    format!(
                        "general.architecture is '{arch}'; plumb's Llama model reads llama, \
                         mistral and qwen2"
                    ),
                ))
            }
        };
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = f.require_u64(&k("embedding_length"))? as usize;
        let heads = f.require_u64(&k("attention.head_count"))? as usize;
        let vocab = match f.meta(&k("vocab_size")).and_then(|v| v.as_i64()) {
            Some(v) => v as usize,
            None => f
                .require("tokenizer.ggml.tokens")?
                .as_array()
                .map_or(0, |a| a.len()),
        };
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(Error::format(
                f.path(),
                "embedding_length is not a multiple of head_count",
            ));
        }
        let (rope_theta, rope_scaling) = rope::from_gguf(f, &arch, hidden / heads)?;
        LlamaConfig {
            arch: family,
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: f.require_u64(&k("feed_forward_length"))? as usize,
            num_hidden_layers: f.require_u64(&k("block_count"))? as usize,
            num_attention_heads: heads,
            num_key_value_heads: f
                .meta(&k("attention.head_count_kv"))
                .and_then(|v| v.as_i64())
                .map_or(heads, |v| v as usize),
            head_dim: hidden / heads,
            rms_norm_eps: f.require_f64(&k("attention.layer_norm_rms_epsilon"))?,
            rope_theta,
            rope_scaling,
            max_position_embeddings: f
                .meta(&k("context_length"))
                .and_then(|v| v.as_i64())
                .map_or(2048, |v| v as usize),
            tie_word_embeddings: f.get("output.weight").is_none(),
            // llama.cpp reads a Llama's projection biases where the file has them
            attention_bias: family == LlamaArch::Qwen2 || f.get("blk.0.attn_q.bias").is_some(),
        }
        .checked(f.path())
    }

    /// From a Hugging Face config.json.
    pub fn from_hf(c: &HfConfig) -> Result<LlamaConfig> {
        let hidden = c.usize("hidden_size")?;
        let heads = c.usize("num_attention_heads")?;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(Error::format(
                &c.path,
                "hidden_size is not a multiple of num_attention_heads",
            ));
        }
        let max_position_embeddings = c.usize_or("max_position_embeddings", 2048);
        let arch = match c.model_type() {
            "qwen2" => LlamaArch::Qwen2,
            _ => LlamaArch::Llama,
        };
        let flag = |k: &str| c.json.get(k).and_then(Value::as_bool) == Some(true);
        // features of the family this model does not compute: refused, not silently ignored
        if flag("mlp_bias") {
            return Err(Error::format(
                &c.path,
                "mlp_bias is true: plumb's Llama has no gate/up/down projection biases",
            ));
        }
        check_sliding_window(c, arch, max_position_embeddings)?;
        let (rope_theta, rope_scaling) = rope::from_hf(c, max_position_embeddings)?;
        LlamaConfig {
            arch,
            vocab_size: c.usize("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: c.usize("intermediate_size")?,
            num_hidden_layers: c.usize("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: c.usize_or("num_key_value_heads", heads),
            head_dim: c.usize_or("head_dim", hidden / heads),
            rms_norm_eps: c.f64_or("rms_norm_eps", 1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            tie_word_embeddings: c
                .json
                .get("tie_word_embeddings")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            attention_bias: arch == LlamaArch::Qwen2 || flag("attention_bias"),
        }
        .checked(&c.path)
    }

    /// The config, or a format error naming `path` where its head counts cannot describe a
    /// model: key/value heads that do not divide the query heads, an odd head size (RoPE
    /// rotates pairs), or no layers.
    fn checked(self, path: &std::path::Path) -> Result<LlamaConfig> {
        let (heads, kv) = (self.num_attention_heads, self.num_key_value_heads);
        let problem = if kv == 0 || !heads.is_multiple_of(kv) {
            Some(format!(
                "{kv} key/value heads do not divide {heads} attention heads"
            ))
        } else if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            Some(format!(
                "head size {} is not a positive even number",
                self.head_dim
            ))
        } else if self.num_hidden_layers == 0 {
            Some("the model has no layers".to_string())
        } else {
            None
        };
        match problem {
            Some(p) => Err(Error::format(path, p)),
            None => Ok(self),
        }
    }
}

/// Refuse a config whose attention looks back only over a window shorter than the context on
/// some layer: plumb attends over every earlier position, which differs from a window once a
/// sequence outgrows it, so such a model would load and compute something else.
///
/// Qwen2 configs switch the window on with `use_sliding_window`: when it is false (as Qwen2.5
/// checkpoints ship) transformers ignores `sliding_window`; when true, the window applies to the
/// layers `layer_types` marks `sliding_attention`, else to those from `max_window_layers` (28
/// by default) on. Other configs (Mistral) apply `sliding_window` to every layer.
fn check_sliding_window(c: &HfConfig, arch: LlamaArch, context: usize) -> Result<()> {
    let j = &c.json;
    let switch = j.get("use_sliding_window").and_then(Value::as_bool);
    let gated = arch == LlamaArch::Qwen2 || switch.is_some();
    if gated && switch != Some(true) {
        return Ok(());
    }
    let Some(window) = j.get("sliding_window").and_then(Value::as_u64) else {
        return Ok(());
    };
    if window as usize >= context {
        return Ok(());
    }
    let slides = match j.get("layer_types").and_then(Value::as_array) {
        _ if !gated => true,
        Some(types) => types
            .iter()
            .any(|t| t.as_str() == Some("sliding_attention")),
        None => c.usize_or("max_window_layers", 28) < c.usize_or("num_hidden_layers", 0),
    };
    if !slides {
        return Ok(());
    }
    Err(Error::format(
        &c.path,
        format!(
            "{}sliding_window {window} is shorter than max_position_embeddings {context}: \
             plumb's Llama has no sliding-window attention",
            if gated {
                "use_sliding_window is true and "
            } else {
                ""
            }
        ),
    ))
}

/// Checkpoint names of one layout.
struct Names {
    gguf: bool,
}

impl Names {
    fn embed(&self) -> &'static str {
        if self.gguf {
            "token_embd.weight"
        } else {
            "model.embed_tokens.weight"
        }
    }
    fn norm(&self) -> &'static str {
        if self.gguf {
            "output_norm.weight"
        } else {
            "model.norm.weight"
        }
    }
    fn head(&self) -> &'static str {
        if self.gguf {
            "output.weight"
        } else {
            "lm_head.weight"
        }
    }
    fn layer(&self, i: usize, part: &str) -> String {
        format!("{}.weight", self.stem(i, part))
    }
    fn bias(&self, i: usize, part: &str) -> String {
        format!("{}.bias", self.stem(i, part))
    }
    /// A layer tensor's name without its `.weight` / `.bias` suffix.
    fn stem(&self, i: usize, part: &str) -> String {
        if self.gguf {
            let p = match part {
                "q" => "attn_q",
                "k" => "attn_k",
                "v" => "attn_v",
                "o" => "attn_output",
                "gate" => "ffn_gate",
                "up" => "ffn_up",
                "down" => "ffn_down",
                "attn_norm" => "attn_norm",
                _ => "ffn_norm",
            };
            format!("blk.{i}.{p}")
        } else {
            let p = match part {
                "q" => "self_attn.q_proj",
                "k" => "self_attn.k_proj",
                "v" => "self_attn.v_proj",
                "o" => "self_attn.o_proj",
                "gate" => "mlp.gate_proj",
                "up" => "mlp.up_proj",
                "down" => "mlp.down_proj",
                "attn_norm" => "input_layernorm",
                _ => "post_attention_layernorm",
            };
            format!("model.layers.{i}.{p}")
        }
    }
}

struct Block {
    attn_norm: Tensor,
    /// q, k and v
    qkv: Proj,
    o: Tensor,
    o_bias: Option<Tensor>,
    ffn_norm: Tensor,
    /// gate and up
    gate_up: Proj,
    down: Tensor,
}

/// One projection of a [`Proj`]: its weight's name and [out, in] shape, and its bias's name
/// where it has one.
struct Part {
    weight: String,
    shape: [usize; 2],
    bias: Option<String>,
}

/// Projections of one input: one stacked matrix with the parts' biases stacked the same way
/// (one matmul, bias fused, its output narrowed into the parts) or, when the checkpoint stores
/// the parts in different dtypes, the matrices apart. Biases load in the run's float dtype
/// (quantized files keep them f32, like every vector), never quantized.
enum Proj {
    Stacked {
        w: Tensor,
        bias: Option<Tensor>,
        sizes: Vec<usize>,
    },
    Apart(Vec<(Tensor, Option<Tensor>)>),
}

impl Proj {
    /// Stacking needs every part to have a bias or none (as q/k/v and gate/up do).
    fn load(w: &Weights, parts: &[Part]) -> Result<Proj> {
        let bias = |p: &Part| match &p.bias {
            Some(b) => w.get(b, &p.shape[..1]).map(Some),
            None => Ok(None),
        };
        let refs: Vec<(&str, &[usize])> = parts
            .iter()
            .map(|p| (p.weight.as_str(), &p.shape[..]))
            .collect();
        Ok(match w.get_matrix_stack(&refs)? {
            Some(m) => {
                let biases = parts.iter().map(bias).collect::<Result<Vec<_>>>()?;
                let biases: Vec<&Tensor> = biases.iter().flatten().collect();
                Proj::Stacked {
                    w: m,
                    bias: match biases.len() {
                        0 => None,
                        n if n == parts.len() => Some(Tensor::cat(&biases, 0)?),
                        _ => {
                            return Err(Error::invalid(
                                "llama",
                                "stacked projections must all have a bias or none",
                            ))
                        }
                    },
                    sizes: parts.iter().map(|p| p.shape[0]).collect(),
                }
            }
            None => Proj::Apart(
                parts
                    .iter()
                    .map(|p| Ok((w.get_matrix(&p.weight, &p.shape)?, bias(p)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// `x` [.., in] → one [.., n_i] tensor per part.
    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Proj::Stacked { w, bias, sizes } => {
                let y = x.linear(w, bias.as_ref())?;
                let mut start = 0;
                sizes
                    .iter()
                    .map(|&n| {
                        let part = y.narrow(-1, start, n);
                        start += n;
                        part
                    })
                    .collect()
            }
            Proj::Apart(ms) => ms.iter().map(|(m, b)| x.linear(m, b.as_ref())).collect(),
        }
    }
}

/// A Llama decoder.
pub struct Llama {
    pub config: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    head: Tensor,
    interleaved: bool,
    /// RoPE's `head_dim / 2` inverse frequencies, scaling applied
    inv_freq: Vec<f64>,
    /// what cos and sin are multiplied by (YaRN's attention factor, else 1)
    rope_scale: f64,
    dtype: DType,
}

/// Keys and values of every layer so far: [1, kv_heads, capacity, head_dim] each, of which the
/// first `len` positions are filled. New positions are written in place (`Tensor::write_slice`)
/// instead of concatenating the whole cache every step; the capacity doubles when full.
///
/// By default keys and values are kept in the dtype the model computes in. A narrower float
/// dtype ([`KvCache::with_dtype`]: f16 or bf16 under f32 activations, as llama.cpp keeps its
/// cache in f16) halves the cache's memory and what each decoding step reads of it; the new
/// positions are rounded once as they are written, and attention widens them as it reads.
#[derive(Default)]
pub struct KvCache {
    k: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
    pub len: usize,
    dtype: Option<DType>,
}

/// Positions a layer's cache holds at first (then doubled as needed).
const KV_FIRST_CAPACITY: usize = 256;

impl KvCache {
    pub fn new(layers: usize) -> KvCache {
        KvCache {
            k: vec![None; layers],
            v: vec![None; layers],
            len: 0,
            dtype: None,
        }
    }

    /// A cache that keeps keys and values in `dtype` (`None`: the model's compute dtype); a
    /// float dtype (f32, f16, bf16, f64), else an error naming it.
    pub fn with_dtype(layers: usize, dtype: Option<DType>) -> Result<KvCache> {
        if let Some(d) = dtype.filter(|d| !d.is_float()) {
            return Err(Error::UnsupportedDType {
                op: "kv cache".into(),
                dtype: d,
                device: "any device".into(),
                reason: "keys and values are kept in a float dtype (f32, f16, bf16, f64)".into(),
            });
        }
        Ok(KvCache {
            dtype,
            ..KvCache::new(layers)
        })
    }

    /// The dtype this cache keeps keys and values in (`None`: the model's compute dtype).
    pub fn dtype(&self) -> Option<DType> {
        self.dtype
    }

    /// Bytes the cache holds now (every layer's keys and values at their current capacity).
    pub fn bytes(&self) -> u64 {
        self.k
            .iter()
            .chain(&self.v)
            .flatten()
            .map(|t| t.nbytes() as u64)
            .sum()
    }

    /// Write `new` [1, kv_heads, s, head_dim] after the `len` positions `slot` holds (rounded
    /// to `dtype` where given), growing it when full; returns a view of all `len + s`
    /// positions.
    fn append(
        slot: &mut Option<Tensor>,
        new: &Tensor,
        len: usize,
        dtype: Option<DType>,
    ) -> Result<Tensor> {
        let new = match dtype {
            Some(d) if d != new.dtype() => &new.to_dtype(d)?,
            _ => new,
        };
        let total = len + new.shape()[2];
        let cap = slot.as_ref().map_or(0, |t| t.shape()[2]);
        if total > cap {
            let mut shape = new.shape().to_vec();
            shape[2] = total.max(2 * cap).max(KV_FIRST_CAPACITY);
            let mut grown = Tensor::zeros(&shape, new.dtype(), new.device())?;
            if let Some(old) = slot.take().filter(|_| len > 0) {
                grown.write_slice(2, 0, &old.narrow(2, 0, len)?)?;
            }
            *slot = Some(grown);
        }
        let Some(t) = slot.as_mut() else {
            return Err(Error::invalid(
                "llama",
                "kv cache slot missing after growth",
            ));
        };
        t.write_slice(2, len, new)?;
        t.narrow(2, 0, total)
    }
}

impl Llama {
    pub fn load(config: &LlamaConfig, w: &Weights) -> Result<Llama> {
        let c = config;
        let n = Names {
            gguf: w.contains("token_embd.weight"),
        };
        let (h, hd) = (c.hidden_size, c.head_dim);
        let (qd, kvd, ff) = (
            c.num_attention_heads * hd,
            c.num_key_value_heads * hd,
            c.intermediate_size,
        );
        // the lookup table needs floats; the tied output head may stay quantized
        let embed = w.get(n.embed(), &[c.vocab_size, h])?;
        let head = if w.contains(n.head()) {
            w.get_matrix(n.head(), &[c.vocab_size, h])?
        } else {
            w.get_matrix(n.embed(), &[c.vocab_size, h])?
        };
        // grown as layers load: a corrupt layer count fails at the first missing layer, not
        // by reserving room for it
        let mut blocks = Vec::new();
        for i in 0..c.num_hidden_layers {
            let m = |p: &str, s: &[usize]| w.get_matrix(&n.layer(i, p), s);
            let part = |p: &str, rows: usize, biased: bool| Part {
                weight: n.layer(i, p),
                shape: [rows, h],
                bias: biased.then(|| n.bias(i, p)),
            };
            let qkv_bias = c.attention_bias;
            let o_bias = n.bias(i, "o");
            blocks.push(Block {
                attn_norm: w.get(&n.layer(i, "attn_norm"), &[h])?,
                qkv: Proj::load(
                    w,
                    &[
                        part("q", qd, qkv_bias),
                        part("k", kvd, qkv_bias),
                        part("v", kvd, qkv_bias),
                    ],
                )?,
                o: m("o", &[h, qd])?,
                o_bias: if c.attention_bias && w.contains(&o_bias) {
                    Some(w.get(&o_bias, &[h])?)
                } else {
                    None
                },
                ffn_norm: w.get(&n.layer(i, "ffn_norm"), &[h])?,
                gate_up: Proj::load(w, &[part("gate", ff, false), part("up", ff, false)])?,
                down: m("down", &[h, ff])?,
            });
        }
        let divisors = match c.rope_scaling {
            RopeScaling::Divisors { .. } => Some(w.get_f32_host(rope::ROPE_FREQS, &[hd / 2])?),
            _ => None,
        };
        let inv_freq = rope::inv_freq(c.rope_theta, hd, &c.rope_scaling, divisors.as_deref())?;
        Ok(Llama {
            config: config.clone(),
            embed,
            blocks,
            norm: w.get(n.norm(), &[h])?,
            head,
            interleaved: n.gguf && c.arch.gguf_permutes_qk(),
            inv_freq,
            rope_scale: c.rope_scaling.attention_scaling(),
            dtype: w.float_dtype(),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn rope_tables(&self, start: usize, len: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        // dynamic NTK: past the original context, frequencies for the positions this call reaches
        let c = &self.config;
        let dynamic = c
            .rope_scaling
            .dynamic()
            .filter(|&(_, max)| (start + len) as f64 > max)
            .map(|d| rope::dynamic_inv_freq(c.rope_theta, c.head_dim, d, start + len));
        for p in start..start + len {
            for inv in dynamic.as_ref().unwrap_or(&self.inv_freq) {
                let a = p as f64 * inv;
                cos.push(a.cos() * self.rope_scale);
                sin.push(a.sin() * self.rope_scale);
            }
        }
        Ok((
            Tensor::from_f64(&cos, self.dtype, [len, half], dev)?,
            Tensor::from_f64(&sin, self.dtype, [len, half], dev)?,
        ))
    }

    /// The positions a sequence may fill: `max_position_embeddings` (GGUF's `context_length`),
    /// or `None` with dynamic NTK scaling, which stretches RoPE past it by design.
    pub fn context_limit(&self) -> Option<usize> {
        let c = &self.config;
        c.rope_scaling
            .dynamic()
            .is_none()
            .then_some(c.max_position_embeddings)
    }

    /// Run `ids` (batch 1) after what `cache` holds; returns the f32 logits of the last
    /// position [vocab] (all positions [len, vocab] when `all_logits`).
    pub fn forward(
        &self,
        ids: &[u32],
        cache: &mut KvCache,
        dev: &Device,
        all_logits: bool,
    ) -> Result<Tensor> {
        dev.scope(|| self.forward_ops(ids, cache, dev, all_logits))
    }

    fn forward_ops(
        &self,
        ids: &[u32],
        cache: &mut KvCache,
        dev: &Device,
        all_logits: bool,
    ) -> Result<Tensor> {
        let c = &self.config;
        let s = ids.len();
        if s == 0 {
            return Err(Error::invalid("llama", "no tokens to run"));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Err(Error::OutOfRange {
                op: "llama",
                what: "token id",
                index: bad as i64,
                bound: c.vocab_size,
                shape: vec![s],
            });
        }
        if cache.k.len() != c.num_hidden_layers {
            *cache = KvCache::with_dtype(c.num_hidden_layers, cache.dtype)?;
        }
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let ids32: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
        let ids = Tensor::from_slice(&ids32, [s], dev)?;
        let mut x = self
            .embed
            .index_select(&ids, 0)?
            .reshape([1, s, c.hidden_size])?;
        let (cos, sin) = self.rope_tables(cache.len, s, dev)?;
        for (li, b) in self.blocks.iter().enumerate() {
            let hn = x.rms_norm(Some(&b.attn_norm), c.rms_norm_eps)?;
            let [q, k, v]: [Tensor; 3] = b
                .qkv
                .forward(&hn)?
                .try_into()
                .map_err(|_| Error::invalid("llama", "q/k/v projection count"))?;
            let q = q.reshape([1, s, nh, hd])?.transpose(1, 2)?;
            let k = k.reshape([1, s, nkv, hd])?.transpose(1, 2)?;
            let v = v.reshape([1, s, nkv, hd])?.transpose(1, 2)?;
            let q = q.contiguous()?.rope(&cos, &sin, self.interleaved)?;
            let k = k.contiguous()?.rope(&cos, &sin, self.interleaved)?;
            let v = v.contiguous()?;
            let k = KvCache::append(&mut cache.k[li], &k, cache.len, cache.dtype)?;
            let v = KvCache::append(&mut cache.v[li], &v, cache.len, cache.dtype)?;
            let att = Tensor::attention(&q, &k, &v, None, s > 1, None)?
                .transpose(1, 2)?
                .reshape([1, s, nh * hd])?;
            // the output projection, its bias and the residual (fused where the device can)
            x = att.linear_add(&b.o, b.o_bias.as_ref(), &x)?;
            let hn = x.rms_norm(Some(&b.ffn_norm), c.rms_norm_eps)?;
            let [g, u]: [Tensor; 2] = b
                .gate_up
                .forward(&hn)?
                .try_into()
                .map_err(|_| Error::invalid("llama", "gate/up projection count"))?;
            let g = g.silu()?;
            x = x.add(&g.mul(&u)?.qmatmul(&b.down)?)?;
        }
        cache.len += s;
        let x = if all_logits {
            x.reshape([s, c.hidden_size])?
        } else {
            x.narrow(1, s - 1, 1)?.reshape([1, c.hidden_size])?
        };
        let x = x.rms_norm(Some(&self.norm), c.rms_norm_eps)?;
        let logits = x.qmatmul(&self.head)?.to_dtype(DType::F32)?;
        if all_logits {
            Ok(logits)
        } else {
            logits.reshape([c.vocab_size])
        }
    }
}
