//! Downloading a model id that is not in the local Hugging Face cache, through the `hf-hub`
//! crate: into the same cache and layout as the Python `huggingface_hub` (`models--org--name/`
//! with `blobs/`, `snapshots/<commit>/` and `refs/main`), so either tool reuses the other's files.
//!
//! Which files: the repository's config, tokenizer and sentence-transformers files
//! (`config.json`, `tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja`,
//! `modules.json`, `sentence_bert_config.json`, and the `N_Name/config.json` of each module), and
//! its weights: `model.safetensors`, or the index and every shard it names, or else its one GGUF
//! file (a repository of several GGUFs needs `org/name/FILE.gguf`).
//!
//! The endpoint is `$HF_ENDPOINT` if set, else the hub's own; a token comes from `$HF_TOKEN` or
//! the cache's token file. `HF_HUB_OFFLINE=1` never connects. Any failure is an error naming the
//! id, the endpoint and what went wrong.

use plumb_core::{Error, Result};
use std::path::{Path, PathBuf};

/// Files besides the weights that a model folder may hold.
const SIDE_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

/// Whether `HF_HUB_OFFLINE` forbids connecting (as in `huggingface_hub`: `1`, `true`, `yes`, `on`).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// Where the files come from, as said in errors: `$HF_ENDPOINT`, else the hub.
fn endpoint_name() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => "the Hugging Face hub".to_string(),
    }
}

/// Download model `id` (`org/name`) into the cache at `cache` (the hub cache folder), or only
/// `file` of it (a GGUF) with the side files. Returns the snapshot folder, or the GGUF's path.
pub fn download(id: &str, file: Option<&str>, cache: &Path) -> Result<PathBuf> {
    let repo_dir = cache.join(format!("models--{}", id.replace('/', "--")));
    let fail = |what: String| {
        Error::format(
            &repo_dir,
            format!(
                "'{id}' is not in the local Hugging Face cache and downloading it from {} \
                 failed: {what}",
                endpoint_name()
            ),
        )
    };
    let mut builder =
        hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(cache.to_path_buf()))
            .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if let Ok(e) = std::env::var("HF_ENDPOINT") {
        if !e.is_empty() {
            builder = builder.with_endpoint(e.trim_end_matches('/').to_string());
        }
    }
    if let Ok(t) = std::env::var("HF_TOKEN") {
        if !t.is_empty() {
            builder = builder.with_token(Some(t));
        }
    }
    let api = builder.build().map_err(|e| fail(e.to_string()))?;
    let repo = api.model(id.to_string());
    let info = repo
        .info()
        .map_err(|e| fail(format!("listing its files: {e}")))?;
    let names: Vec<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let get = |name: &str| {
        repo.get(name)
            .map_err(|e| fail(format!("fetching {name}: {e}")))
    };
    let weights = pick_weights(&names, file).map_err(fail)?;
    for name in names
        .iter()
        .filter(|n| SIDE_FILES.contains(n) || is_module_config(n))
    {
        get(name)?;
    }
    let got = get(&weights)?;
    let snapshot = snapshot_of(&got, &weights);
    if weights.ends_with(".index.json") {
        for shard in shards(&got)? {
            if !names.contains(&shard.as_str()) {
                return Err(fail(format!(
                    "{weights} names {shard}, which the repository does not hold"
                )));
            }
            get(&shard)?;
        }
    }
    Ok(if weights.ends_with(".gguf") {
        got
    } else {
        snapshot
    })
}

/// `N_Name/config.json`: a sentence-transformers module's settings (pooling, normalisation).
fn is_module_config(name: &str) -> bool {
    name.split_once('/').is_some_and(|(dir, f)| {
        f == "config.json"
            && dir
                .split('_')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
    })
}

/// The weights file to fetch among the repository's `names`: `file` if given (it must be
/// there), else `model.safetensors.index.json`, `model.safetensors`, or the only GGUF.
fn pick_weights(names: &[&str], file: Option<&str>) -> std::result::Result<String, String> {
    if let Some(f) = file {
        return if names.contains(&f) {
            Ok(f.to_string())
        } else {
            Err(format!("the repository holds no file {f}"))
        };
    }
    for w in ["model.safetensors.index.json", "model.safetensors"] {
        if names.contains(&w) {
            return Ok(w.to_string());
        }
    }
    let ggufs: Vec<&&str> = names.iter().filter(|n| n.ends_with(".gguf")).collect();
    match ggufs.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "the repository holds no model.safetensors, safetensors index or GGUF file (files: {})",
            names.join(", ")
        )),
        many => Err(format!(
            "the repository holds {} GGUF files; name one as ORG/NAME/FILE.gguf: {}",
            many.len(),
            many.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The snapshot folder of a file fetched as `name` (which may hold folders).
fn snapshot_of(path: &Path, name: &str) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in name.split('/') {
        p.pop();
    }
    p
}

/// The shard files a `model.safetensors.index.json` names.
fn shards(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(index, format!("not JSON: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::format(index, "no weight_map object"))?;
    let mut out: Vec<String> = map
        .values()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_weights_and_module_configs() {
        let n = [
            "config.json",
            "model.safetensors",
            "1_Pooling/config.json",
            "a.gguf",
        ];
        assert_eq!(pick_weights(&n, None).unwrap(), "model.safetensors");
        assert_eq!(pick_weights(&n, Some("a.gguf")).unwrap(), "a.gguf");
        assert!(pick_weights(&n, Some("b.gguf"))
            .unwrap_err()
            .contains("b.gguf"));
        let g = ["x.Q4_0.gguf", "x.Q8_0.gguf", "README.md"];
        let e = pick_weights(&g, None).unwrap_err();
        assert!(
            e.contains("2 GGUF files") && e.contains("x.Q8_0.gguf"),
            "{e}"
        );
        assert!(pick_weights(&["README.md"], None)
            .unwrap_err()
            .contains("README.md"));
        assert!(is_module_config("1_Pooling/config.json"));
        assert!(!is_module_config("onnx/config.json"));
        assert_eq!(
            snapshot_of(
                Path::new("/c/snap/1_Pooling/config.json"),
                "1_Pooling/config.json"
            ),
            Path::new("/c/snap")
        );
    }
}
