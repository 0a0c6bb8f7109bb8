//! BERT family encoders (all-MiniLM-L6-v2 and peers) with checkpoint-exact weight names, and
//! sentence-transformers pooling + normalisation as the model folder's modules say.

use crate::config::{HfConfig, ModelFiles};
use crate::tokenizer::{Batch, Tokenizer};
use crate::weights::Weights;
use plumb_core::{DType, Error, Result, Tensor, UnaryOp};
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: UnaryOp,
}

impl BertConfig {
    pub fn from_hf(c: &HfConfig) -> Result<BertConfig> {
        let act = match c.str("hidden_act").unwrap_or("gelu") {
            "gelu" => UnaryOp::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => UnaryOp::GeluTanh,
            "relu" => UnaryOp::Relu,
            other => {
                return Err(Error::format(
                    &c.path,
                    format!("hidden_act '{other}' is not supported (gelu, gelu_new, relu are)"),
                ))
            }
        };
        let cfg = BertConfig {
            vocab_size: c.usize("vocab_size")?,
            hidden_size: c.usize("hidden_size")?,
            num_hidden_layers: c.usize("num_hidden_layers")?,
            num_attention_heads: c.usize("num_attention_heads")?,
            intermediate_size: c.usize("intermediate_size")?,
            max_position_embeddings: c.usize_or("max_position_embeddings", 512),
            type_vocab_size: c.usize_or("type_vocab_size", 2),
            layer_norm_eps: c.f64_or("layer_norm_eps", 1e-12),
            hidden_act: act,
        };
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(Error::format(
                &c.path,
                "hidden_size must be a multiple of num_attention_heads",
            ));
        }
        Ok(cfg)
    }
}

struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn load(w: &Weights, name: &str, out: usize, inp: usize) -> Result<Linear> {
        let bias = format!("{name}.bias");
        Ok(Linear {
            w: w.get_matrix(&format!("{name}.weight"), &[out, inp])?,
            b: if w.contains(&bias) {
                Some(w.get(&bias, &[out])?)
            } else {
                None
            },
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.w, self.b.as_ref())
    }
    /// The layer and its activation, fused where the device can.
    fn forward_act(&self, x: &Tensor, act: UnaryOp) -> Result<Tensor> {
        x.linear_act(&self.w, self.b.as_ref(), act)
    }
    /// The layer plus the skip connection `residual`, fused where the device can.
    fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        x.linear_add(&self.w, self.b.as_ref(), residual)
    }
}

/// Query, key and value: one stacked [3·h, h] linear layer (one matmul, its output narrowed
/// into the three) where the three weights load in one dtype and all have a bias or none; the
/// three apart otherwise.
enum Qkv {
    Stacked(Linear),
    Apart(Vec<Linear>),
}

impl Qkv {
    fn load(w: &Weights, layer: &str, h: usize) -> Result<Qkv> {
        let names = ["query", "key", "value"].map(|p| format!("{layer}.attention.self.{p}"));
        let biases = names.iter().map(|n| format!("{n}.bias"));
        let with_bias = biases.clone().filter(|b| w.contains(b)).count();
        if with_bias == 0 || with_bias == 3 {
            let weights = names
                .iter()
                .map(|n| format!("{n}.weight"))
                .collect::<Vec<_>>();
            let shape = [h, h];
            let parts: Vec<(&str, &[usize])> =
                weights.iter().map(|n| (n.as_str(), &shape[..])).collect();
            if let Some(m) = w.get_matrix_stack(&parts)? {
                let b = if with_bias == 3 {
                    let bs = biases
                        .map(|b| w.get(&b, &[h]))
                        .collect::<Result<Vec<_>>>()?;
                    Some(Tensor::cat(&bs.iter().collect::<Vec<_>>(), 0)?)
                } else {
                    None
                };
                return Ok(Qkv::Stacked(Linear { w: m, b }));
            }
        }
        let apart = names.iter().map(|n| Linear::load(w, n, h, h));
        Ok(Qkv::Apart(apart.collect::<Result<_>>()?))
    }

    /// `x` [.., h] → q, k and v, [.., h] each; `unpad` is applied to each projection's output
    /// (the stacked one once) before it is split.
    fn forward(
        &self,
        x: &Tensor,
        h: usize,
        unpad: impl Fn(Tensor) -> Result<Tensor>,
    ) -> Result<[Tensor; 3]> {
        match self {
            Qkv::Stacked(l) => {
                let y = unpad(l.forward(x)?)?;
                Ok([
                    y.narrow(-1, 0, h)?,
                    y.narrow(-1, h, h)?,
                    y.narrow(-1, 2 * h, h)?,
                ])
            }
            Qkv::Apart(ls) => {
                let [q, k, v] = &ls[..] else {
                    return Err(Error::invalid("bert", "q/k/v projection count"));
                };
                Ok([
                    unpad(q.forward(x)?)?,
                    unpad(k.forward(x)?)?,
                    unpad(v.forward(x)?)?,
                ])
            }
        }
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(w: &Weights, name: &str, n: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            w: w.get(&format!("{name}.weight"), &[n])?,
            b: w.get(&format!("{name}.bias"), &[n])?,
            eps,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(Some(&self.w), Some(&self.b), self.eps)
    }
}

struct Layer {
    qkv: Qkv,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

/// A BERT encoder.
pub struct Bert {
    pub config: BertConfig,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: LayerNorm,
    position_ids: Option<Tensor>,
    layers: Vec<Layer>,
    dtype: DType,
}

impl Bert {
    /// Load with checkpoint names (`embeddings.*`, `encoder.layer.N.*`; a `bert.` prefix is
    /// accepted too).
    pub fn load(config: &BertConfig, w: &Weights) -> Result<Bert> {
        let p = if w.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let c = config;
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let word = w.get(
            &format!("{p}embeddings.word_embeddings.weight"),
            &[c.vocab_size, h],
        )?;
        let position = w.get(
            &format!("{p}embeddings.position_embeddings.weight"),
            &[c.max_position_embeddings, h],
        )?;
        let token_type = w.get(
            &format!("{p}embeddings.token_type_embeddings.weight"),
            &[c.type_vocab_size, h],
        )?;
        let emb_norm = LayerNorm::load(w, &format!("{p}embeddings.LayerNorm"), h, eps)?;
        let pid_name = format!("{p}embeddings.position_ids");
        let position_ids = if w.contains(&pid_name) {
            let t = w.get(&pid_name, &[1, c.max_position_embeddings])?;
            Some(t.reshape([c.max_position_embeddings])?)
        } else {
            None
        };
        // grown as layers load: a corrupt layer count fails at the first missing layer
        let mut layers = Vec::new();
        for i in 0..c.num_hidden_layers {
            let l = format!("{p}encoder.layer.{i}");
            layers.push(Layer {
                qkv: Qkv::load(w, &l, h)?,
                attn_out: Linear::load(w, &format!("{l}.attention.output.dense"), h, h)?,
                attn_norm: LayerNorm::load(w, &format!("{l}.attention.output.LayerNorm"), h, eps)?,
                inter: Linear::load(
                    w,
                    &format!("{l}.intermediate.dense"),
                    c.intermediate_size,
                    h,
                )?,
                out: Linear::load(w, &format!("{l}.output.dense"), h, c.intermediate_size)?,
                out_norm: LayerNorm::load(w, &format!("{l}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            config: config.clone(),
            word,
            position,
            token_type,
            emb_norm,
            position_ids,
            layers,
            dtype: w.float_dtype(),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Hidden states [batch, seq, hidden] of `ids` [batch, seq] (i32) with `mask` [batch, seq]
    /// (1 = token, 0 = padding, in the model's float dtype).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        ids.device().scope(|| self.forward_ops(ids, mask, None))
    }

    /// [`Bert::forward`] that skips the padding: `tokens` is `mask` on the host (1 = token).
    /// Every layer but attention runs on the real tokens only, packed into [tokens, hidden]
    /// rows, and attention reads them back into the padded layout. The hidden states of real
    /// tokens are those of [`Bert::forward`]; a padding position holds a copy of its sequence's
    /// first token (the pooling masks it out).
    pub fn forward_unpadded(&self, ids: &Tensor, mask: &Tensor, tokens: &[u32]) -> Result<Tensor> {
        let (b, s) = batch_dims(ids, mask)?;
        if tokens.len() != b * s {
            return Err(Error::invalid(
                "bert",
                format!("mask of {} values for a {b}×{s} batch", tokens.len()),
            ));
        }
        let packing = Packing::new(tokens, s, ids.device())?;
        ids.device()
            .scope(|| self.forward_ops(ids, mask, packing.as_ref()))
    }

    fn forward_ops(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        packing: Option<&Packing>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, s) = batch_dims(ids, mask)?;
        if s > c.max_position_embeddings {
            return Err(Error::invalid(
                "bert",
                format!(
                    "{s} tokens exceed max_position_embeddings {}",
                    c.max_position_embeddings
                ),
            ));
        }
        let dev = ids.device();
        let pos_ids = match &self.position_ids {
            Some(p) => p.narrow(0, 0, s)?,
            None => Tensor::arange(0.0, s as f64, 1.0, DType::I32, dev)?,
        };
        let pos = self.position.index_select(&pos_ids, 0)?; // [s, h]
        let tt = self.token_type.narrow(0, 0, 1)?; // token_type_ids are all 0
        let x = self.word.embedding(ids)?.add(&pos)?.add(&tt)?;
        let (nh, h) = (c.num_attention_heads, c.hidden_size);
        // packed: [tokens, h] from here on
        let x = match packing {
            Some(p) => x.reshape([b * s, h])?.index_select(&p.keep, 0)?,
            None => x,
        };
        let mut x = self.emb_norm.forward(&x)?;
        // additive mask [b, 1, 1, s]: 0 for tokens, −∞ for padding
        let zero = Tensor::scalar(0.0, self.dtype, dev)?;
        let ninf = Tensor::scalar(f64::NEG_INFINITY, self.dtype, dev)?;
        let neg = mask
            .reshape([b, 1, 1, s])?
            .eq(&zero)?
            .where_cond(&ninf, &zero)?;
        let hd = h / nh;
        // packed rows → the padded [b·s, ..] layout
        let unpad = |t: Tensor| -> Result<Tensor> {
            match packing {
                Some(p) => t.index_select(&p.unpack, 0),
                None => Ok(t),
            }
        };
        let heads = |t: Tensor| -> Result<Tensor> { t.reshape([b, s, nh, hd])?.transpose(1, 2) };
        for l in &self.layers {
            let [q, k, v] = l.qkv.forward(&x, h, unpad)?.map(heads);
            let (q, k, v) = (q?, k?, v?);
            let ctx = Tensor::attention(&q, &k, &v, Some(&neg), false, None)?.transpose(1, 2)?;
            let ctx = match packing {
                Some(p) => ctx.reshape([b * s, h])?.index_select(&p.keep, 0)?,
                None => ctx.reshape([b, s, h])?,
            };
            let a = l.attn_out.forward_add(&ctx, &x)?;
            x = l.attn_norm.forward(&a)?;
            let i = l.inter.forward_act(&x, c.hidden_act)?;
            let o = l.out.forward_add(&i, &x)?;
            x = l.out_norm.forward(&o)?;
        }
        unpad(x)?.reshape([b, s, h])
    }
}

/// (batch, seq) of `ids`, which must be [batch, seq] as `mask` is.
fn batch_dims(ids: &Tensor, mask: &Tensor) -> Result<(usize, usize)> {
    match ids.dims() {
        &[b, s] if mask.dims() == [b, s] => Ok((b, s)),
        _ => Err(Error::shape(
            "bert",
            ids.dims(),
            mask.dims(),
            "ids [batch, seq] and a mask of the same shape",
        )),
    }
}

/// Where a padded batch's real tokens are, for [`Bert::forward_unpadded`].
struct Packing {
    /// [tokens] i32: the padded position (row · seq + column) of each packed row
    keep: Tensor,
    /// [batch · seq] i32: the packed row each padded position reads; a padding position reads
    /// its sequence's first token (attention masks it out, and it is dropped again after)
    unpack: Tensor,
}

impl Packing {
    /// None where there is no padding (or no token at all): the padded layout is the packed one.
    fn new(mask: &[u32], seq: usize, dev: &plumb_core::Device) -> Result<Option<Packing>> {
        let n = mask.iter().filter(|&&m| m != 0).count();
        if n == mask.len() || n == 0 || seq == 0 {
            return Ok(None);
        }
        let mut keep = Vec::with_capacity(n);
        let mut unpack = vec![0i32; mask.len()];
        for (r, row) in mask.chunks_exact(seq).enumerate() {
            let first = keep.len();
            for (c, &m) in row.iter().enumerate() {
                if m != 0 {
                    unpack[r * seq + c] = keep.len() as i32;
                    keep.push((r * seq + c) as i32);
                }
            }
            // a sequence with no token reads row 0: finite values that pooling masks out
            let fill = if keep.len() > first { first as i32 } else { 0 };
            for (c, &m) in row.iter().enumerate() {
                if m == 0 {
                    unpack[r * seq + c] = fill;
                }
            }
        }
        Ok(Some(Packing {
            keep: Tensor::from_slice(&keep, [n], dev)?,
            unpack: Tensor::from_slice(&unpack, [mask.len()], dev)?,
        }))
    }
}

/// sentence-transformers pooling modes (1_Pooling/config.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Max,
}

/// The sentence-transformers pipeline of a folder: Transformer → Pooling → (Normalize).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentenceConfig {
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_seq_length: usize,
}

impl SentenceConfig {
    /// Read modules.json, the pooling config and sentence_bert_config.json from `dir`; without
    /// them: mean pooling, L2 normalisation, max_position_embeddings tokens.
    pub fn load(dir: &Path, max_positions: usize) -> Result<SentenceConfig> {
        let read = |p: &Path| -> Result<Option<serde_json::Value>> {
            if !p.is_file() {
                return Ok(None);
            }
            let t = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| Error::format(p, format!("not valid JSON: {e}")))
        };
        let mut cfg = SentenceConfig {
            pooling: Pooling::Mean,
            normalize: true,
            max_seq_length: max_positions,
        };
        let mut pooling_dir = dir.join("1_Pooling");
        if let Some(m) = read(&dir.join("modules.json"))? {
            let mods = m.as_array().cloned().unwrap_or_default();
            let ty = |v: &serde_json::Value| v["type"].as_str().unwrap_or("").to_string();
            cfg.normalize = mods.iter().any(|v| ty(v).ends_with(".Normalize"));
            if let Some(p) = mods.iter().find(|v| ty(v).ends_with(".Pooling")) {
                pooling_dir = dir.join(p["path"].as_str().unwrap_or("1_Pooling"));
            }
        }
        if let Some(p) = read(&pooling_dir.join("config.json"))? {
            let on = |k: &str| p[k].as_bool().unwrap_or(false);
            cfg.pooling = if on("pooling_mode_cls_token") {
                Pooling::Cls
            } else if on("pooling_mode_max_tokens") {
                Pooling::Max
            } else {
                Pooling::Mean
            };
        }
        if let Some(s) = read(&dir.join("sentence_bert_config.json"))? {
            if let Some(n) = s["max_seq_length"].as_u64() {
                cfg.max_seq_length = (n as usize).min(max_positions);
            }
        }
        Ok(cfg)
    }
}

/// Tokenizer + BERT + pooling: text in, sentence vectors out.
pub struct Embedder {
    pub tokenizer: Tokenizer,
    pub bert: Bert,
    pub sentence: SentenceConfig,
}

impl Embedder {
    /// Load from a model folder's files onto the weights' device.
    pub fn load(files: &ModelFiles, weights: &Weights) -> Result<Embedder> {
        let cfg_path = files.config.as_ref().ok_or_else(|| {
            Error::format(
                &files.dir,
                "a BERT model needs config.json next to its weights",
            )
        })?;
        let config = BertConfig::from_hf(&HfConfig::load(cfg_path)?)?;
        let tok_path = files
            .tokenizer
            .as_ref()
            .ok_or_else(|| Error::format(&files.dir, "no tokenizer.json next to the weights"))?;
        let tokenizer = Tokenizer::from_file(tok_path)?;
        let sentence = SentenceConfig::load(&files.dir, config.max_position_embeddings)?;
        let bert = Bert::load(&config, weights)?;
        Ok(Embedder {
            tokenizer,
            bert,
            sentence,
        })
    }

    /// Pooled (and normalised, as configured) vectors [batch, hidden] of an encoded batch.
    pub fn forward_batch(&self, batch: &Batch, device: &plumb_core::Device) -> Result<Tensor> {
        let dt = self.bert.dtype();
        let (b, s) = (batch.batch, batch.seq);
        let ids: Vec<i32> = batch.ids.iter().map(|&i| i as i32).collect();
        let ids = Tensor::from_slice(&ids, [b, s], device)?;
        let m: Vec<f64> = batch.mask.iter().map(|&m| m as f64).collect();
        let mask = Tensor::from_f64(&m, dt, [b, s], device)?;
        let hidden = self
            .bert
            .forward_unpadded(&ids, &mask, &batch.mask)?
            .to_dtype(DType::F32)?;
        let mask32 = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [b, s, 1]
        let pooled = match self.sentence.pooling {
            Pooling::Mean => {
                let sum = hidden.mul(&mask32)?.sum(1, false)?; // [b, h]
                let n =
                    mask32
                        .sum(1, false)?
                        .maximum(&Tensor::scalar(1e-9, DType::F32, device)?)?;
                sum.div(&n)?
            }
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Max => {
                let zero = Tensor::scalar(0.0, DType::F32, device)?;
                let pad = mask32.eq(&zero)?;
                let ninf = Tensor::scalar(f64::NEG_INFINITY, DType::F32, device)?;
                pad.where_cond(&ninf, &hidden)?.max(1, false)?
            }
        };
        if !self.sentence.normalize {
            return Ok(pooled);
        }
        let norm = pooled
            .mul(&pooled)?
            .sum(1, true)?
            .sqrt()?
            .maximum(&Tensor::scalar(1e-12, DType::F32, device)?)?;
        pooled.div(&norm)
    }

    /// Sentence vectors of `texts`, `batch_size` at a time.
    pub fn embed(
        &self,
        texts: &[&str],
        batch_size: usize,
        device: &plumb_core::Device,
    ) -> Result<Vec<Vec<f32>>> {
        // batches of similar length pad less (sentence-transformers sorts by characters, this
        // by tokens); the vectors come back in the callers' order
        let rows = self
            .tokenizer
            .encode_rows(texts, self.sentence.max_seq_length)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(rows[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for idx in order.chunks(batch_size.max(1)) {
            let chunk: Vec<&[u32]> = idx.iter().map(|&i| rows[i].as_slice()).collect();
            let batch = self.tokenizer.pad(&chunk);
            let v = self.forward_batch(&batch, device)?;
            let h = v.dims()[1];
            let flat = v.to_vec::<f32>()?;
            for (&i, c) in idx.iter().zip(flat.chunks_exact(h)) {
                out[i] = c.to_vec();
            }
        }
        Ok(out)
    }
}
