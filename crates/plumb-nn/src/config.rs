//! Hugging Face `config.json` (and sentence-transformers' side files) and where a model lives:
//! a folder, a file, or a Hugging Face id resolved through the local Hugging Face cache.

use plumb_core::{DType, Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A parsed `config.json`, kept as JSON with typed accessors that name the missing key.
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub path: PathBuf,
    pub json: Value,
}

impl HfConfig {
    pub fn load(path: &Path) -> Result<HfConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
        if !json.is_object() {
            return Err(Error::format(path, "config is not a JSON object"));
        }
        Ok(HfConfig {
            path: path.to_path_buf(),
            json,
        })
    }
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.json
            .get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| {
                Error::format(&self.path, format!("'{key}' is missing or not an integer"))
            })
    }
    pub fn usize_or(&self, key: &str, default: usize) -> usize {
        self.json
            .get(key)
            .and_then(|v| v.as_u64())
            .map_or(default, |v| v as usize)
    }
    pub fn f64_or(&self, key: &str, default: f64) -> f64 {
        self.json
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(|v| v.as_str())
    }
    pub fn model_type(&self) -> &str {
        self.str("model_type").unwrap_or("")
    }
    /// `torch_dtype` (or `dtype` in newer configs): the checkpoint's storage dtype.
    pub fn torch_dtype(&self) -> Option<DType> {
        self.str("torch_dtype")
            .or_else(|| self.str("dtype"))
            .and_then(|s| s.parse().ok())
    }
}

/// The files of one model.
#[derive(Clone, Debug, Default)]
pub struct ModelFiles {
    /// the folder the model lives in
    pub dir: PathBuf,
    /// a .gguf file, a .safetensors file, an index json, or the folder itself
    pub weights: PathBuf,
    pub config: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
    /// `chat_template.jinja` (transformers 5 saves the template there rather than in
    /// tokenizer_config.json; it takes priority when both have one)
    pub chat_template: Option<PathBuf>,
}

impl ModelFiles {
    pub fn is_gguf(&self) -> bool {
        self.weights.extension().is_some_and(|e| e == "gguf")
    }
}

fn existing(p: PathBuf) -> Option<PathBuf> {
    p.is_file().then_some(p)
}

/// The Hugging Face hub cache: $HF_HUB_CACHE, $HF_HOME/hub, else ~/.cache/huggingface/hub.
pub fn hf_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// Resolve `org/name` through the local cache (`models--org--name/snapshots/<rev>/`, the
/// revision in `refs/main` if present, else the newest snapshot).
pub fn resolve_hf_id(id: &str) -> Result<PathBuf> {
    let cache = hf_cache_dir().unwrap_or_default();
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let not_cached = || {
        Error::format(
            &repo,
            format!(
                "'{id}' is not a local path and is not in the Hugging Face cache ({}); with HF_HUB_OFFLINE unset plumb downloads it there, or fetch it with `huggingface-cli download {id}`, or pass a folder",
                cache.display()
            ),
        )
    };
    let snaps = repo.join("snapshots");
    if !snaps.is_dir() {
        return Err(not_cached());
    }
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let p = snaps.join(rev.trim());
        if p.is_dir() {
            return Ok(p);
        }
    }
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&snaps)
        .map_err(|e| Error::io(&snaps, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, p)| p).ok_or_else(not_cached)
}

/// `id` (or its `file`) downloaded into the Hugging Face cache ([`crate::hub`]); under
/// `HF_HUB_OFFLINE`, or without a cache folder, the error `not_cached` of the local lookup.
fn fetch(id: &str, file: Option<&str>, not_cached: Error) -> Result<PathBuf> {
    match hf_cache_dir() {
        Some(cache) if !crate::hub::offline() => crate::hub::download(id, file, &cache),
        _ => Err(not_cached),
    }
}

/// Find a model's files from a folder, a weights file, or a Hugging Face id (`org/name`, or
/// `org/name/FILE.gguf`): from the local cache, else downloaded into it.
pub fn resolve_model(spec: &str) -> Result<ModelFiles> {
    let p = PathBuf::from(spec);
    let hub_like = !spec.starts_with('.') && !spec.starts_with('/') && !spec.contains('\\');
    let path = if p.exists() {
        p
    } else if spec.matches('/').count() == 1 && hub_like {
        resolve_hf_id(spec).or_else(|e| fetch(spec, None, e))?
    } else if spec.matches('/').count() == 2 && hub_like && spec.ends_with(".gguf") {
        // org/name/FILE.gguf: one GGUF of a repository that holds several
        let (id, file) = spec.rsplit_once('/').unwrap_or((spec, ""));
        match resolve_hf_id(id) {
            Ok(dir) if dir.join(file).is_file() => dir.join(file),
            Ok(dir) => {
                let missing = Error::format(
                    dir.join(file),
                    format!("'{id}' is cached without {file}, and HF_HUB_OFFLINE is set"),
                );
                fetch(id, Some(file), missing)?
            }
            Err(e) => fetch(id, Some(file), e)?,
        }
    } else {
        return Err(Error::io(
            &p,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    };
    if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        return Ok(ModelFiles {
            config: existing(dir.join("config.json")),
            tokenizer: existing(dir.join("tokenizer.json")),
            tokenizer_config: existing(dir.join("tokenizer_config.json")),
            chat_template: existing(dir.join("chat_template.jinja")),
            weights: path,
            dir,
        });
    }
    let dir = path;
    let weights = if dir.join("model.safetensors.index.json").is_file() {
        dir.join("model.safetensors.index.json")
    } else if dir.join("model.safetensors").is_file() {
        dir.join("model.safetensors")
    } else {
        let mut ggufs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "gguf" || e == "safetensors")
            })
            .collect();
        ggufs.sort();
        match ggufs.len() {
            0 => {
                return Err(Error::format(
                    &dir,
                    "no model.safetensors, model.safetensors.index.json or *.gguf in this folder",
                ))
            }
            1 => ggufs.remove(0),
            _ if ggufs
                .iter()
                .all(|p| p.extension().is_some_and(|e| e == "safetensors")) =>
            {
                dir.clone()
            }
            _ => {
                let names: Vec<String> = ggufs.iter().map(|p| p.display().to_string()).collect();
                return Err(Error::format(
                    &dir,
                    format!("several weight files; pass one of: {}", names.join(", ")),
                ));
            }
        }
    };
    Ok(ModelFiles {
        config: existing(dir.join("config.json")),
        tokenizer: existing(dir.join("tokenizer.json")),
        tokenizer_config: existing(dir.join("tokenizer_config.json")),
        chat_template: existing(dir.join("chat_template.jinja")),
        weights,
        dir,
    })
}
