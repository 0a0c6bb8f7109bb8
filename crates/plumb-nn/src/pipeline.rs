//! Whole-model entry points: detect what a model is, plan it on the meta device against a
//! target device (before any weight is read), then load it onto the target.

use crate::config::{HfConfig, ModelFiles};
use crate::generate::TextGenerator;
use crate::models::bert::Embedder;
use crate::models::llama::KvCache;
use crate::weights::{open_weights, Weights};
use plumb_core::plan::Plan;
use plumb_core::{DType, Device, Error, Result};

/// Which model family a folder or file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// BERT encoder + sentence pooling (`plumb embed`)
    Bert,
    /// Llama-family decoder: Llama, Mistral, Qwen2 (`plumb generate`)
    Llama,
}

pub fn detect_kind(files: &ModelFiles) -> Result<ModelKind> {
    if files.is_gguf() {
        return Ok(ModelKind::Llama);
    }
    let cfg = files.config.as_ref().ok_or_else(|| {
        Error::format(
            &files.dir,
            "no config.json: cannot tell which model this is",
        )
    })?;
    let c = HfConfig::load(cfg)?;
    match c.model_type() {
        "bert" => Ok(ModelKind::Bert),
        // qwen2: the Llama architecture with q/k/v projection biases
        "llama" | "mistral" | "qwen2" => Ok(ModelKind::Llama),
        other => Err(Error::format(
            cfg,
            format!("model_type '{other}' is not supported (bert, llama, mistral and qwen2 are)"),
        )),
    }
}

/// A loaded model.
pub enum Model {
    Embedder(Box<Embedder>),
    Generator(Box<TextGenerator>),
}

/// A plan and what went into it.
pub struct ModelPlan {
    pub kind: ModelKind,
    /// the architecture as its checkpoint names it (`BERT`, `Llama`, `Qwen2`)
    pub architecture: &'static str,
    pub plan: Plan,
    /// the float dtype the weights will have on the target
    pub dtype: DType,
    /// weight conversions the load will make
    pub conversions: Vec<String>,
    /// bytes of the weights as loaded on the target
    pub weight_bytes: u64,
    /// what the traced forward pass was
    pub workload: String,
}

/// Load the model onto `dev` (the meta device or a real one).
fn load_on(files: &ModelFiles, kind: ModelKind, w: &Weights) -> Result<Model> {
    Ok(match kind {
        ModelKind::Bert => Model::Embedder(Box::new(Embedder::load(files, w)?)),
        ModelKind::Llama => Model::Generator(Box::new(TextGenerator::load(files, w)?)),
    })
}

/// Run one representative forward pass: a batch of `batch` sentences of `seq` tokens for BERT,
/// a prefill of `seq` tokens and one decode step for Llama. The token ids lie inside the
/// model's vocabulary, however small.
pub fn run_workload(
    model: &Model,
    dev: &Device,
    batch: usize,
    seq: usize,
) -> Result<plumb_core::Tensor> {
    match model {
        Model::Embedder(e) => {
            let vocab = e.bert.config.vocab_size.max(1);
            let ids: Vec<u32> = (0..batch * seq)
                .map(|i| ((1000 + i % 500) % vocab) as u32)
                .collect();
            let b = crate::tokenizer::Batch {
                ids,
                mask: vec![1; batch * seq],
                batch,
                seq,
            };
            e.forward_batch(&b, dev)
        }
        Model::Generator(g) => {
            let mut cache = KvCache::with_dtype(g.model.config.num_hidden_layers, g.kv_dtype)?;
            let vocab = g.model.config.vocab_size.max(1);
            let ids: Vec<u32> = (0..seq).map(|i| ((100 + i) % vocab) as u32).collect();
            g.model.forward(&ids, &mut cache, dev, false)?;
            g.model
                .forward(&[(42 % vocab) as u32], &mut cache, dev, false)
        }
    }
}

/// Trace the model on the meta device (headers only, no weight data read) and check the trace
/// against `target` under its policy.
pub fn plan_model(
    files: &ModelFiles,
    target: &Device,
    dtype: Option<DType>,
    dequantize: bool,
) -> Result<ModelPlan> {
    plan_model_kv(files, target, dtype, dequantize, None)
}

/// [`plan_model`] with a Llama's KV cache kept in `kv_dtype` ([`KvCache::with_dtype`]): the
/// trace holds its casts and the memory estimate its bytes. An embedding model has no cache:
/// a `kv_dtype` for one is an error.
pub fn plan_model_kv(
    files: &ModelFiles,
    target: &Device,
    dtype: Option<DType>,
    dequantize: bool,
    kv_dtype: Option<DType>,
) -> Result<ModelPlan> {
    KvCache::with_dtype(0, kv_dtype)?;
    let kind = detect_kind(files)?;
    if kv_dtype.is_some() && kind == ModelKind::Bert {
        return Err(Error::invalid(
            "plan",
            format!(
                "{} is an embedding model: it keeps no KV cache to choose a dtype for",
                files.dir.display()
            ),
        ));
    }
    let meta = Device::meta();
    let mut w = open_weights(files, &meta, target, dtype)?;
    w.set_dequantize(dequantize);
    let mut model = load_on(files, kind, &w)?;
    if let Model::Generator(g) = &mut model {
        g.kv_dtype = kv_dtype;
    }
    w.finish();
    let weight_bytes = w.loaded_bytes();
    meta.take_trace(); // loading records no ops that the forward needs; start clean
    let weights = w.loaded_shapes();
    let (batch, seq) = match kind {
        ModelKind::Bert => (1, 128),
        ModelKind::Llama => (1, 64),
    };
    let out = run_workload(&model, &meta, batch, seq)?;
    drop(out);
    let trace = meta.take_trace();
    let architecture = match &model {
        Model::Embedder(_) => "BERT",
        Model::Generator(g) => g.model.config.arch.display_name(),
    };
    let mut resident = weight_bytes;
    if let Model::Generator(g) = &model {
        let c = &g.model.config;
        // K and V of every layer for seq + 1 positions
        resident += (2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * (seq + 1))
            as u64
            * kv_dtype.unwrap_or(w.float_dtype()).storage_bytes(1) as u64;
    }
    let plan = Plan::build_with_resident(&trace, target, target.policy(), &weights)
        .with_resident(resident);
    Ok(ModelPlan {
        kind,
        architecture,
        plan,
        dtype: w.float_dtype(),
        conversions: meta.report().conversions,
        weight_bytes,
        workload: match kind {
            ModelKind::Bert => format!("embed {batch} × {seq} tokens"),
            ModelKind::Llama => format!(
                "prefill {seq} tokens + 1 decode step{}",
                kv_dtype.map_or(String::new(), |d| format!(", KV cache in {d}"))
            ),
        },
    })
}

/// Plan, refuse a plan with errors before touching the device, then load onto `target`.
/// `progress(done_bytes, total_bytes)` is called as weights load.
pub fn load_model(
    files: &ModelFiles,
    target: &Device,
    dtype: Option<DType>,
    dequantize: bool,
    progress: Option<crate::weights::Progress>,
) -> Result<(Model, Weights, ModelPlan)> {
    let plan = plan_model(files, target, dtype, dequantize)?;
    plan.plan.check()?;
    let mut w = open_weights(files, target, target, dtype)?;
    w.set_dequantize(dequantize);
    if let Some(p) = progress {
        w.set_progress(p);
    }
    let model = load_on(files, plan.kind, &w)?;
    w.finish();
    Ok((model, w, plan))
}
