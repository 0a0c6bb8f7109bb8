//! Model commands: embed, generate, check, convert, inspect (owned by the models helper).

use crate::common::GlobalOpts;
use clap::{Args, Subcommand};
use plumb_core::{DType, Device, Error, Result};
use plumb_nn::pipeline::{load_model, plan_model_kv, run_workload, Model, ModelPlan};
use plumb_nn::{resolve_model, ModelFiles};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct DeviceOpts {
    /// device: cpu, gpu, gpu:N, auto (env PLUMB_DEVICE)
    #[arg(long, env = "PLUMB_DEVICE", default_value = "auto")]
    device: String,
    /// float dtype of weights and compute (f32, f16, bf16, f64); default: the checkpoint's
    /// torch_dtype, else f32
    #[arg(long)]
    dtype: Option<String>,
    /// dequantize quantized weights on load and compute exactly in the float dtype (default:
    /// keep them quantized and use the device's quantized matmul)
    #[arg(long)]
    dequantize: bool,
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Sentence embeddings (BERT family): one vector per TEXT, or per stdin line
    Embed {
        /// model folder, file, or Hugging Face id (from the local cache)
        model: String,
        /// texts to embed (default: one per line from stdin)
        text: Vec<String>,
        #[command(flatten)]
        dev: DeviceOpts,
        /// print JSON ({"model", "dtype", "device", "embeddings": [[..], ..]})
        #[arg(long)]
        json: bool,
        /// texts run together (at least 1)
        #[arg(long, default_value_t = 32, value_parser = at_least_one)]
        batch_size: usize,
    },
    /// Text generation (Llama family), streaming tokens as they come
    Generate {
        model: String,
        /// the text to continue; with --chat, the user's message (after --messages, if given)
        #[arg(long, required_unless_present = "messages")]
        prompt: Option<String>,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// 0 = greedy
        #[arg(long, default_value_t = 0.0, value_parser = temperature)]
        temperature: f64,
        /// sample from the k likeliest tokens (0 = all)
        #[arg(long)]
        top_k: Option<usize>,
        /// sample from the likeliest tokens whose probabilities reach p (0 < p ≤ 1)
        #[arg(long, value_parser = probability)]
        top_p: Option<f64>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// keep the KV cache in this float dtype (default: the model's compute dtype); f16
        /// halves its memory and what each decoding step reads of it, as llama.cpp's default
        #[arg(long, value_name = "DTYPE")]
        kv_dtype: Option<String>,
        /// wrap the prompt in the model's chat template
        #[arg(long)]
        chat: bool,
        /// a system message before the prompt (with --chat)
        #[arg(long, requires = "chat")]
        system: Option<String>,
        /// a Jinja chat template file to use instead of the model's own (with --chat)
        #[arg(long, requires = "chat", value_name = "FILE")]
        chat_template: Option<std::path::PathBuf>,
        /// the conversation so far, a JSON list of messages as transformers takes them (roles,
        /// content, an assistant's tool_calls, tool results) (with --chat)
        #[arg(long, requires = "chat", value_name = "FILE")]
        messages: Option<std::path::PathBuf>,
        /// function schemas the model may call, a JSON list (apply_chat_template's tools)
        #[arg(long, requires = "chat", value_name = "FILE")]
        tools: Option<std::path::PathBuf>,
        /// documents for retrieval templates, a JSON list (apply_chat_template's documents)
        #[arg(long, requires = "chat", value_name = "FILE")]
        documents: Option<std::path::PathBuf>,
        #[command(flatten)]
        dev: DeviceOpts,
    },
    /// The plan for a model on a device: every op's support and decision, conversions, memory
    Check {
        model: String,
        #[command(flatten)]
        dev: DeviceOpts,
        /// also run the model in the target dtype and in f32 and compare the outputs
        #[arg(long)]
        measure: bool,
        /// plan a generation model's KV cache in this float dtype (as `generate --kv-dtype`)
        #[arg(long, value_name = "DTYPE")]
        kv_dtype: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Rewrite a model's weights as safetensors in another float dtype (atomic)
    Convert {
        model: String,
        #[arg(long)]
        dtype: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// What a safetensors or GGUF file holds (tensors, dtypes, shapes, bytes), validated
    Inspect {
        /// the file to inspect
        file: PathBuf,
        /// list every tensor (default: the first 20 and totals)
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ModelCommand, global: &GlobalOpts) -> Result<()> {
    match cmd {
        ModelCommand::Inspect { file, all, json } => inspect(&file, all, json),
        ModelCommand::Convert { model, dtype, out } => {
            let files = resolve_model(&model)?;
            let dtype: DType = dtype.parse()?;
            let r = plumb_nn::convert::convert(&files, dtype, &out)?;
            eprintln!(
                "wrote {} tensors ({}) in {dtype} to {}",
                r.tensors,
                plumb_core::plan::human_bytes(r.bytes),
                out.display()
            );
            for f in r.files {
                println!("{}", f.display());
            }
            Ok(())
        }
        ModelCommand::Check {
            model,
            dev,
            measure,
            kv_dtype,
            json,
        } => {
            let kv_dtype: Option<DType> = kv_dtype.as_deref().map(str::parse).transpose()?;
            check(&model, &dev, (measure, kv_dtype), json, global)
        }
        ModelCommand::Embed {
            model,
            text,
            dev,
            json,
            batch_size,
        } => embed(&model, text, &dev, json, batch_size, global),
        ModelCommand::Generate {
            model,
            prompt,
            max_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            kv_dtype,
            chat,
            system,
            chat_template,
            messages,
            tools,
            documents,
            dev,
        } => {
            // checked before anything loads
            let kv_dtype: Option<DType> = kv_dtype.as_deref().map(str::parse).transpose()?;
            plumb_nn::models::llama::KvCache::with_dtype(0, kv_dtype)?;
            let params = plumb_nn::generate::SamplingParams {
                temperature,
                top_k,
                top_p,
                seed,
            };
            let chat = chat.then_some(Chat {
                system,
                template: chat_template,
                messages,
                tools,
                documents,
            });
            let run = Run {
                max_tokens,
                params,
                kv_dtype,
            };
            generate(&model, prompt.as_deref(), run, chat, &dev, global)
        }
    }
}

fn open_device(opts: &DeviceOpts, global: &GlobalOpts) -> Result<(Device, Option<DType>)> {
    // an empty PLUMB_DEVICE counts as unset, as every PLUMB_* setting's does
    let spec = match opts.device.trim() {
        "" => "auto",
        s => s,
    };
    let dev = plumb::device(spec)?.with_policy(global.policy);
    let dtype = opts.dtype.as_deref().map(str::parse).transpose()?;
    Ok((dev, dtype))
}

fn load(
    files: &ModelFiles,
    dev: &Device,
    dtype: Option<DType>,
    dequantize: bool,
) -> Result<(Model, ModelPlan)> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "loading {bar:30} {bytes}/{total_bytes} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let progress = bar.clone().map(|b| {
        Box::new(move |done: u64, total: u64| {
            b.set_length(total);
            b.set_position(done);
        }) as plumb_nn::weights::Progress
    });
    let r = load_model(files, dev, dtype, dequantize, progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (model, _w, plan) = r?;
    Ok((model, plan))
}

fn finish(dev: &Device, global: &GlobalOpts) {
    if global.explain {
        eprint!("{}", dev.report());
    }
}

fn embed(
    model: &str,
    mut texts: Vec<String>,
    opts: &DeviceOpts,
    json: bool,
    batch_size: usize,
    global: &GlobalOpts,
) -> Result<()> {
    if texts.is_empty() {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            texts.push(line.map_err(|e| Error::io("<stdin>", e))?);
        }
    }
    let files = resolve_model(model)?;
    let (dev, dtype) = open_device(opts, global)?;
    let (m, plan) = load(&files, &dev, dtype, opts.dequantize)?;
    let Model::Embedder(e) = m else {
        return Err(Error::invalid(
            "embed",
            format!("{model} is a text generator; use `plumb generate`"),
        ));
    };
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let vecs = e.embed(&refs, batch_size, &dev)?;
    let mut out = std::io::stdout().lock();
    let io = |e| Error::io("<stdout>", e);
    if json {
        let v = serde_json::json!({
            "model": model, "device": dev.id(), "dtype": plan.dtype.name(),
            "texts": texts, "embeddings": vecs,
        });
        writeln!(out, "{v}").map_err(io)?;
    } else {
        for v in &vecs {
            let s: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
            writeln!(out, "{}", s.join(" ")).map_err(io)?;
        }
    }
    finish(&dev, global);
    Ok(())
}

/// `--chat`: the prompt is the user's message, after an optional system message and the
/// conversation of `--messages`.
struct Chat {
    system: Option<String>,
    /// `--chat-template`: a template file in place of the model's own
    template: Option<std::path::PathBuf>,
    /// `--messages`, `--tools`, `--documents`: JSON files
    messages: Option<std::path::PathBuf>,
    tools: Option<std::path::PathBuf>,
    documents: Option<std::path::PathBuf>,
}

/// A JSON list from `path` (`what` names it in errors).
fn json_list(path: &std::path::Path, what: &str) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("{what}: not JSON: {e}")))?;
    if !v.is_array() {
        return Err(Error::format(path, format!("{what}: expected a JSON list")));
    }
    Ok(v)
}

/// The conversation `--chat` renders: the system message, `--messages`, then the prompt as the
/// user's message; each message an object with a string `role`.
fn conversation(chat: &Chat, prompt: Option<&str>) -> Result<serde_json::Value> {
    let mut list = Vec::new();
    if let Some(sys) = &chat.system {
        list.push(serde_json::json!({"role": "system", "content": sys}));
    }
    if let Some(path) = &chat.messages {
        let given = json_list(path, "--messages")?;
        for (i, m) in given.as_array().into_iter().flatten().enumerate() {
            if !m.get("role").is_some_and(|r| r.is_string()) {
                return Err(Error::format(
                    path,
                    format!("--messages: message {i} is not an object with a string 'role'"),
                ));
            }
            list.push(m.clone());
        }
    }
    if let Some(p) = prompt {
        list.push(serde_json::json!({"role": "user", "content": p}));
    }
    Ok(serde_json::Value::Array(list))
}

/// How `plumb generate` runs: tokens, sampling, the KV cache's dtype.
struct Run {
    max_tokens: usize,
    params: plumb_nn::generate::SamplingParams,
    kv_dtype: Option<DType>,
}

fn generate(
    model: &str,
    prompt: Option<&str>,
    run: Run,
    chat: Option<Chat>,
    opts: &DeviceOpts,
    global: &GlobalOpts,
) -> Result<()> {
    let files = resolve_model(model)?;
    // a template file is read and compiled before the weights load
    let template = match chat.as_ref().and_then(|c| c.template.as_deref()) {
        Some(path) => Some(plumb_nn::chat::ChatTemplate::from_file(path)?),
        None => None,
    };
    // and the conversation files read and checked
    let conv = match &chat {
        Some(c) => Some((
            conversation(c, prompt)?,
            c.tools
                .as_deref()
                .map(|p| json_list(p, "--tools"))
                .transpose()?,
            c.documents
                .as_deref()
                .map(|p| json_list(p, "--documents"))
                .transpose()?,
        )),
        None => None,
    };
    let (dev, dtype) = open_device(opts, global)?;
    let (m, plan) = load(&files, &dev, dtype, opts.dequantize)?;
    let Model::Generator(mut g) = m else {
        return Err(Error::invalid(
            "generate",
            format!("{model} is an embedding model; use `plumb embed`"),
        ));
    };
    let ids = match conv {
        None => g.prompt_ids(prompt.unwrap_or_default(), false)?,
        Some((messages, tools, documents)) => {
            if let Some(t) = template {
                g.set_chat_template(t);
            }
            g.chat_ids_with(&messages, tools.as_ref(), documents.as_ref())?
        }
    };
    let Run {
        max_tokens,
        params,
        kv_dtype,
    } = run;
    g.kv_dtype = kv_dtype;
    let mut sampler = plumb_nn::generate::Sampler::new(params)?;
    let mut dec = plumb_nn::tokenizer::StreamDecoder::new();
    let mut out = std::io::stdout().lock();
    let stats = g.generate(&ids, max_tokens, &mut sampler, true, &dev, &mut |t| {
        if let Some(piece) = dec.push(&g.tokenizer, t)? {
            out.write_all(piece.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("<stdout>", e))?;
        }
        Ok(())
    })?;
    writeln!(out).map_err(|e| Error::io("<stdout>", e))?;
    eprintln!(
        "{} prompt tokens at {:.1} tokens/s, {} generated at {:.1} tokens/s ({} {} on {}{})",
        stats.prompt_tokens,
        stats.prefill_tok_s(),
        stats.generated,
        stats.decode_tok_s(),
        files.weights.display(),
        plan.dtype,
        dev.id(),
        kv_dtype.map_or(String::new(), |d| format!(", KV cache in {d}"))
    );
    if stats.stop == plumb_nn::generate::Stop::ContextFull {
        eprintln!(
            "stopped: the model's context of {} positions is full, before --max-tokens \
             {max_tokens}",
            g.model.context_limit().unwrap_or_default()
        );
    }
    finish(&dev, global);
    Ok(())
}

fn check(
    model: &str,
    opts: &DeviceOpts,
    (measure, kv_dtype): (bool, Option<DType>),
    json: bool,
    global: &GlobalOpts,
) -> Result<()> {
    let files = resolve_model(model)?;
    let (dev, dtype) = open_device(opts, global)?;
    let p = plan_model_kv(&files, &dev, dtype, opts.dequantize, kv_dtype)?;
    if json {
        let v = serde_json::json!({
            "model": model, "architecture": p.architecture, "dtype": p.dtype.name(),
            "workload": p.workload,
            "weight_bytes": p.weight_bytes, "conversions": p.conversions,
            "plan": serde_json::to_value(&p.plan).unwrap_or_default(),
        });
        println!("{v}");
    } else {
        println!(
            "model {model}: {}, weights {} in {} on {}",
            p.architecture,
            plumb_core::plan::human_bytes(p.weight_bytes),
            p.dtype,
            dev.id()
        );
        println!("traced: {}", p.workload);
        for c in &p.conversions {
            println!("conversion at load: {c}");
        }
        print!("{}", p.plan);
    }
    if !p.plan.ok {
        return p.plan.check();
    }
    if measure {
        let (a, b, what) = measure_outputs(&files, &dev, &p, (opts.dequantize, kv_dtype))?;
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() as f64)
            .fold(0.0, f64::max);
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        println!(
            "measure: {what} in {}{}{} vs f32 with every weight dequantized, on {}: max abs error {err:.3e}, cosine {:.7} ({} outputs)",
            p.dtype,
            if opts.dequantize { "" } else { " (quantized weights kept)" },
            kv_dtype.map_or(String::new(), |d| format!(" with the KV cache in {d}")),
            dev.id(),
            dot / (na * nb).max(1e-30),
            a.len()
        );
    }
    finish(&dev, global);
    Ok(())
}

/// Run the traced workload with real weights in the plan's dtype (a Llama's KV cache in
/// `kv_dtype` where given) and in f32.
fn measure_outputs(
    files: &ModelFiles,
    dev: &Device,
    p: &ModelPlan,
    (dequantize, kv_dtype): (bool, Option<DType>),
) -> Result<(Vec<f32>, Vec<f32>, String)> {
    let (batch, seq, what) = match p.kind {
        plumb_nn::pipeline::ModelKind::Bert => (4, 32, "embeddings of 4 × 32 tokens"),
        plumb_nn::pipeline::ModelKind::Llama => (1, 32, "logits after a 32-token prefill + 1 step"),
    };
    let mut outs = Vec::new();
    // the reference: f32 with every weight dequantized
    for (dt, deq, kv) in [(p.dtype, dequantize, kv_dtype), (DType::F32, true, None)] {
        let (mut m, _, _) = load_model(files, dev, Some(dt), deq, None)?;
        if let Model::Generator(g) = &mut m {
            g.kv_dtype = kv;
        }
        let y = run_workload(&m, dev, batch, seq)?.to_dtype(DType::F32)?;
        outs.push(y.to_vec::<f32>()?);
    }
    let b = outs.pop().unwrap_or_default();
    let a = outs.pop().unwrap_or_default();
    Ok((a, b, what.to_string()))
}

fn inspect(file: &std::path::Path, all: bool, json: bool) -> Result<()> {
    let wf = plumb_nn::WeightFile::open(file)?;
    let tensors = wf.tensors();
    let mut per: std::collections::BTreeMap<String, (usize, u64, u64)> = Default::default();
    for (t, _) in &tensors {
        let e = per.entry(t.dtype.name().to_string()).or_default();
        e.0 += 1;
        e.1 += t.numel() as u64;
        e.2 += t.nbytes as u64;
    }
    let total: u64 = per.values().map(|v| v.2).sum();
    let params: u64 = per.values().map(|v| v.1).sum();
    if json {
        let ts: Vec<serde_json::Value> = tensors
            .iter()
            .map(|(t, _)| serde_json::json!({"name": t.name, "dtype": t.dtype.name(), "shape": t.shape, "bytes": t.nbytes}))
            .collect();
        let by: serde_json::Map<String, serde_json::Value> = per
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::json!({"tensors": v.0, "elements": v.1, "bytes": v.2}),
                )
            })
            .collect();
        let meta: serde_json::Map<String, serde_json::Value> = match &wf {
            plumb_nn::WeightFile::Gguf(g) => g
                .metadata()
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!(v.short())))
                .collect(),
            plumb_nn::WeightFile::Safetensors(s) => s
                .files()
                .iter()
                .flat_map(|f| f.metadata().iter())
                .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                .collect(),
        };
        let v = serde_json::json!({"file": file, "tensors": ts, "per_dtype": by,
            "total_bytes": total, "elements": params, "metadata": meta});
        println!("{v}");
        return Ok(());
    }
    let hb = plumb_core::plan::human_bytes;
    match &wf {
        plumb_nn::WeightFile::Gguf(g) => {
            println!(
                "{}: GGUF v{}, alignment {}, {} tensors, {} metadata keys",
                file.display(),
                g.version,
                g.alignment,
                tensors.len(),
                g.metadata().len()
            );
            for (k, v) in g.metadata() {
                println!("  {k} = {}", v.short());
            }
        }
        plumb_nn::WeightFile::Safetensors(s) => {
            println!(
                "{}: safetensors, {} file(s), {} tensors",
                file.display(),
                s.files().len(),
                tensors.len()
            );
            for f in s.files() {
                for (k, v) in f.metadata() {
                    println!("  {k} = {v}");
                }
            }
        }
    }
    let shown = if all {
        tensors.len()
    } else {
        tensors.len().min(20)
    };
    println!(
        "{:<56} {:>6} {:>20} {:>12}",
        "tensor", "dtype", "shape", "bytes"
    );
    for (t, _) in &tensors[..shown] {
        println!(
            "{:<56} {:>6} {:>20} {:>12}",
            t.name,
            t.dtype.name(),
            format!("{:?}", t.shape),
            hb(t.nbytes as u64)
        );
    }
    if shown < tensors.len() {
        println!(
            "… {} more (--all lists every tensor)",
            tensors.len() - shown
        );
    }
    println!("per dtype:");
    for (k, v) in &per {
        println!(
            "  {k:>6}: {:>4} tensors, {:>12} elements, {}",
            v.0,
            v.1,
            hb(v.2)
        );
    }
    println!(
        "total: {params} elements, {} — every header and offset validated",
        hb(total)
    );
    Ok(())
}

/// `--batch-size`: a whole number of at least 1.
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number of at least 1")),
    }
}

/// `--temperature`: in the range the sampler takes (`check_temperature`).
fn temperature(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|t| plumb_nn::generate::check_temperature(t).ok())
        .ok_or_else(|| format!("'{s}' is not a temperature (a number ≥ 0; 0 = greedy)"))
}

/// `--top-p`: in the range the sampler takes (`check_top_p`).
fn probability(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|p| plumb_nn::generate::check_top_p(p).ok())
        .ok_or_else(|| format!("'{s}' is not a probability in (0, 1]"))
}
