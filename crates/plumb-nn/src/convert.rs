//! `plumb convert`: rewrite a model's weights as safetensors in another float dtype.
//!
//! Every output file is written to a temporary file in the output folder, fsynced and renamed
//! into place, so a failure never leaves a half-written file; the input is only read. GGUF Llama
//! and Qwen2 models become a Hugging Face folder: weights (projection biases included) renamed
//! to the Hugging Face names, a Llama's Q/K rows un-permuted back to the rotate-half layout
//! (llama.cpp leaves Qwen2's as they are), quantized tensors dequantized, plus config.json,
//! tokenizer.json and tokenizer_config.json built from the GGUF metadata.

use crate::config::{HfConfig, ModelFiles};
use crate::gguf::GgufFile;
use crate::models::llama::{LlamaArch, LlamaConfig};
use crate::models::rope::{self, ROPE_FREQS};
use crate::source::{decode_f32, encode_f32, StoredDType, TensorInfo};
use crate::weights::WeightFile;
use plumb_core::{DType, Error, Result};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a conversion wrote.
#[derive(Clone, Debug, Default)]
pub struct ConvertReport {
    pub files: Vec<PathBuf>,
    pub tensors: usize,
    pub bytes: u64,
}

/// One output tensor: its name, where its values come from, and how rows are reordered.
struct Out<'a> {
    name: String,
    info: &'a TensorInfo,
    src: &'a Path,
    /// un-permute GGUF's interleaved Q/K rows for this many heads
    unpermute_heads: Option<usize>,
}

fn torch_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// GGUF tensor name → Hugging Face Llama / Qwen2 name, and the heads to un-permute for Q/K
/// (weights and biases alike, where llama.cpp permuted them: see
/// [`LlamaArch::gguf_permutes_qk`]).
fn hf_name(name: &str, c: &LlamaConfig) -> Option<(String, Option<usize>)> {
    match name {
        "token_embd.weight" => return Some(("model.embed_tokens.weight".into(), None)),
        "output_norm.weight" => return Some(("model.norm.weight".into(), None)),
        "output.weight" => return Some(("lm_head.weight".into(), None)),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (stem, suffix) = part.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let permuted = c.arch.gguf_permutes_qk();
    let (hf, heads) = match stem {
        "attn_q" => ("self_attn.q_proj", Some(c.num_attention_heads)),
        "attn_k" => ("self_attn.k_proj", Some(c.num_key_value_heads)),
        "attn_v" => ("self_attn.v_proj", None),
        "attn_output" => ("self_attn.o_proj", None),
        "ffn_gate" if suffix == "weight" => ("mlp.gate_proj", None),
        "ffn_up" if suffix == "weight" => ("mlp.up_proj", None),
        "ffn_down" if suffix == "weight" => ("mlp.down_proj", None),
        "attn_norm" if suffix == "weight" => ("input_layernorm", None),
        "ffn_norm" if suffix == "weight" => ("post_attention_layernorm", None),
        _ => return None,
    };
    Some((
        format!("model.layers.{layer}.{hf}.{suffix}"),
        heads.filter(|_| permuted),
    ))
}

/// Undo llama.cpp's permutation: within each head, GGUF row 2i + h holds Hugging Face row
/// h · (head_dim / 2) + i.
fn unpermute(vals: &[f32], rows: usize, cols: usize, heads: usize) -> Result<Vec<f32>> {
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(Error::invalid(
            "convert",
            format!("cannot un-permute {rows} rows for {heads} heads"),
        ));
    }
    let hd = rows / heads;
    let mut out = vec![0f32; vals.len()];
    for h in 0..heads {
        for half in 0..2 {
            for i in 0..hd / 2 {
                let dst = h * hd + half * (hd / 2) + i;
                let src = h * hd + 2 * i + half;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&vals[src * cols..(src + 1) * cols]);
            }
        }
    }
    Ok(out)
}

/// A file written to a temporary name in its folder, made durable and renamed by `commit`.
struct Staged {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

fn stage(
    dir: &Path,
    name: &str,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<Staged> {
    let dest = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io(&dest, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(&dest, e))?;
    Ok(Staged { tmp, dest })
}

fn json_file(v: &serde_json::Value) -> impl FnMut(&mut dyn Write) -> Result<()> + '_ {
    move |w: &mut dyn Write| {
        let s = serde_json::to_string_pretty(v)
            .map_err(|e| Error::invalid("convert", format!("json: {e}")))?;
        w.write_all(s.as_bytes())
            .map_err(|e| Error::io("<output>", e))
    }
}

fn write_safetensors(
    w: &mut dyn Write,
    file: &WeightFile,
    outs: &[Out<'_>],
    dtype: DType,
    dest: &Path,
) -> Result<u64> {
    // header: every output tensor's dtype (ints keep theirs), shape and data offsets
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        json!({"format": "pt", "converted_by": "plumb"}),
    );
    let mut off = 0usize;
    let mut out_dtypes = Vec::with_capacity(outs.len());
    for o in outs {
        let d = match o.info.dtype {
            StoredDType::Plain(p) if !p.is_float() && !p.is_quantized() => p,
            _ => dtype,
        };
        let n = d.storage_bytes(o.info.numel());
        header.insert(
            o.name.clone(),
            json!({"dtype": d.safetensors_name().unwrap_or("F32"), "shape": o.info.shape,
                   "data_offsets": [off, off + n]}),
        );
        out_dtypes.push(d);
        off += n;
    }
    let mut h = serde_json::to_string(&header)
        .map_err(|e| Error::invalid("convert", format!("header: {e}")))?
        .into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let io = |e| Error::io(dest, e);
    w.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
    w.write_all(&h).map_err(io)?;
    for (o, d) in outs.iter().zip(out_dtypes) {
        let (bytes, _) = file.bytes(&o.info.name)?;
        if o.info.dtype == StoredDType::Plain(d) && o.unpermute_heads.is_none() {
            w.write_all(bytes).map_err(io)?;
            continue;
        }
        let mut vals = decode_f32(o.src, o.info, bytes)?;
        if let Some(heads) = o.unpermute_heads {
            let cols = o.info.shape.get(1).copied().unwrap_or(1);
            vals = unpermute(&vals, o.info.shape[0], cols, heads)?;
        }
        w.write_all(&encode_f32(d, &vals)?).map_err(io)?;
    }
    Ok(8 + h.len() as u64 + off as u64)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Convert `files` to `dtype` safetensors in `out_dir` (created if needed).
pub fn convert(files: &ModelFiles, dtype: DType, out_dir: &Path) -> Result<ConvertReport> {
    if !dtype.is_float() {
        return Err(Error::invalid(
            "convert",
            format!("--dtype {dtype}: safetensors output is f32, f16, bf16 or f64"),
        ));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    if same_file(out_dir, &files.dir) {
        return Err(Error::invalid(
            "convert",
            format!(
                "--out {} is the model's own folder; the input is never overwritten",
                out_dir.display()
            ),
        ));
    }
    let file = WeightFile::open(&files.weights)?;
    let mut staged: Vec<Staged> = Vec::new();
    let mut created: Vec<PathBuf> = Vec::new();
    let mut report = ConvertReport::default();
    match &file {
        WeightFile::Gguf(g) => {
            let c = LlamaConfig::from_gguf(g)?;
            let mut outs = Vec::new();
            // rope_freqs.weight is RoPE scaling: it goes into config.json's rope_scaling
            for t in g.tensors().iter().filter(|t| t.name != ROPE_FREQS) {
                let (name, heads) = hf_name(&t.name, &c).ok_or_else(|| {
                    Error::format(
                        g.path(),
                        format!(
                            "tensor '{}' has no Hugging Face {} name",
                            t.name,
                            c.arch.hf_names().1
                        ),
                    )
                })?;
                outs.push(Out {
                    name,
                    info: t,
                    src: g.path(),
                    unpermute_heads: heads,
                });
            }
            outs.sort_by(|a, b| a.name.cmp(&b.name));
            report.tensors = outs.len();
            let dest = out_dir.join("model.safetensors");
            staged.push(stage(out_dir, "model.safetensors", &mut |w| {
                report.bytes = write_safetensors(w, &file, &outs, dtype, &dest)?;
                Ok(())
            })?);
            let (cfg, tok, tok_cfg) = gguf_side_files(g, &c, dtype)?;
            staged.push(stage(out_dir, "config.json", &mut json_file(&cfg))?);
            staged.push(stage(out_dir, "tokenizer.json", &mut |w| {
                w.write_all(tok.as_bytes())
                    .map_err(|e| Error::io(out_dir, e))
            })?);
            staged.push(stage(
                out_dir,
                "tokenizer_config.json",
                &mut json_file(&tok_cfg),
            )?);
        }
        WeightFile::Safetensors(set) => {
            let mut outs: Vec<Out> = set
                .names()
                .filter_map(|n| set.info(n))
                .map(|(info, src)| Out {
                    name: info.name.clone(),
                    info,
                    src,
                    unpermute_heads: None,
                })
                .collect();
            outs.sort_by(|a, b| a.name.cmp(&b.name));
            report.tensors = outs.len();
            let dest = out_dir.join("model.safetensors");
            staged.push(stage(out_dir, "model.safetensors", &mut |w| {
                report.bytes = write_safetensors(w, &file, &outs, dtype, &dest)?;
                Ok(())
            })?);
            if let Some(cp) = &files.config {
                let mut cfg = HfConfig::load(cp)?.json;
                cfg["torch_dtype"] = json!(torch_name(dtype));
                staged.push(stage(out_dir, "config.json", &mut json_file(&cfg))?);
            }
            staged.extend(copy_side_files(&files.dir, out_dir, &mut created)?);
        }
    }
    // the weights first: if that rename fails, nothing has been put in place
    let mut pending = staged.into_iter();
    while let Some(s) = pending.next() {
        let dest = s.dest.clone();
        if let Err(e) = s.tmp.persist(&dest) {
            drop(e.file); // removes the temporary file
            drop(pending); // and the ones not yet renamed
            for d in created.iter().rev() {
                let _ = std::fs::remove_dir(d); // only if still empty
            }
            return Err(Error::io(&dest, e.error));
        }
        report.files.push(dest);
    }
    if let Ok(d) = std::fs::File::open(out_dir) {
        let _ = d.sync_all();
    }
    Ok(report)
}

/// Small files that travel with a Hugging Face / sentence-transformers folder.
fn copy_side_files(dir: &Path, out: &Path, created: &mut Vec<PathBuf>) -> Result<Vec<Staged>> {
    let mut staged = Vec::new();
    let mut copy = |rel: &Path| -> Result<()> {
        let src = dir.join(rel);
        let bytes = std::fs::read(&src).map_err(|e| Error::io(&src, e))?;
        let dest_dir = out.join(rel.parent().unwrap_or(Path::new("")));
        if !dest_dir.exists() {
            created.push(dest_dir.clone());
        }
        std::fs::create_dir_all(&dest_dir).map_err(|e| Error::io(&dest_dir, e))?;
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        staged.push(stage(&dest_dir, name, &mut |w| {
            w.write_all(&bytes).map_err(|e| Error::io(&src, e))
        })?);
        Ok(())
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_file() {
            // .jinja: chat_template.jinja, which transformers 5 saves beside tokenizer_config.json
            let side = name.ends_with(".json")
                || name.ends_with(".txt")
                || name.ends_with(".model")
                || name.ends_with(".jinja");
            if side && name != "config.json" && name != "model.safetensors.index.json" {
                copy(Path::new(&name))?;
            }
        } else if p.is_dir() && name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            // sentence-transformers module folders (1_Pooling, 2_Normalize)
            for f in std::fs::read_dir(&p)
                .map_err(|e| Error::io(&p, e))?
                .flatten()
            {
                if f.path().is_file() {
                    copy(&Path::new(&name).join(f.file_name()))?;
                }
            }
        }
    }
    Ok(staged)
}

/// config.json, tokenizer.json and tokenizer_config.json for a GGUF Llama or Qwen2.
fn gguf_side_files(
    g: &GgufFile,
    c: &LlamaConfig,
    dtype: DType,
) -> Result<(serde_json::Value, String, serde_json::Value)> {
    let tok = crate::tokenizer::Tokenizer::from_gguf(g)?;
    let id = |k: &str| g.meta(k).and_then(|v| v.as_i64());
    let divisors = match g.get(ROPE_FREQS) {
        Some(t) => Some(decode_f32(g.path(), t, g.bytes(ROPE_FREQS)?)?),
        None => None,
    };
    // the file's own prefix (a mistral file's keys are mistral.*)
    let arch = g
        .meta("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or(c.arch.gguf_name());
    let original = g
        .meta(&format!("{arch}.rope.scaling.original_context_length"))
        .and_then(|v| v.as_f64());
    let rope_scaling = rope::to_hf(
        g.path(),
        c.rope_theta,
        c.head_dim,
        &c.rope_scaling,
        divisors.as_deref(),
        original,
    )?;
    let (model_type, architecture) = c.arch.hf_names();
    let mut cfg = json!({
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_act": "silu",
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "max_position_embeddings": c.max_position_embeddings,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": c.tie_word_embeddings,
        "bos_token_id": id("tokenizer.ggml.bos_token_id"),
        "eos_token_id": id("tokenizer.ggml.eos_token_id"),
        "torch_dtype": torch_name(dtype),
    });
    if let Some(rs) = rope_scaling {
        cfg["rope_scaling"] = rs;
    }
    match c.arch {
        // llama.cpp computes qwen2 without a sliding window; say so, as Qwen2.5 configs do
        LlamaArch::Qwen2 => cfg["use_sliding_window"] = json!(false),
        LlamaArch::Llama if c.attention_bias => cfg["attention_bias"] = json!(true),
        LlamaArch::Llama => {}
    }
    let tok_json = tok
        .inner()
        .to_string(true)
        .map_err(|e| Error::format(g.path(), format!("tokenizer: {e}")))?;
    let name = |k: &str| -> serde_json::Value {
        id(k)
            .and_then(|i| tok.inner().id_to_token(i as u32))
            .map_or(serde_json::Value::Null, |s| json!(s))
    };
    let tok_cfg = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name("tokenizer.ggml.bos_token_id"),
        "eos_token": name("tokenizer.ggml.eos_token_id"),
        "pad_token": name("tokenizer.ggml.padding_token_id"),
        "unk_token": name("tokenizer.ggml.unknown_token_id"),
        "chat_template": g.meta("tokenizer.chat_template").and_then(|v| v.as_str()),
        "model_max_length": c.max_position_embeddings,
    });
    Ok((cfg, tok_json, tok_cfg))
}
