//! A model id missing from the local Hugging Face cache is downloaded into it (`hf-hub`), from
//! a stand-in hub on 127.0.0.1 that answers as the real one does (the repository listing, and
//! files by range with their etag and commit headers), pointed at by `HF_ENDPOINT`; the cache is a
//! temporary `HF_HUB_CACHE`. The tests share those variables, so they run one at a time.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serialises the tests (they set process-wide environment variables).
static ENV: Mutex<()> = Mutex::new(());

/// Repositories: id → (file name → bytes).
type Repos = HashMap<String, Vec<(String, Vec<u8>)>>;

/// A stand-in hub serving `repos` until the process ends; returns its endpoint and a log of the
/// paths requested.
fn serve(repos: Repos) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().to_string());
                }
            }
            seen.lock().unwrap().push(path.clone());
            let reply = respond(&repos, &path, range.as_deref());
            let _ = stream.write_all(&reply);
        }
    });
    (endpoint, log)
}

/// The hub's answer to one GET.
fn respond(repos: &Repos, path: &str, range: Option<&str>) -> Vec<u8> {
    let head = |status: &str, headers: String, body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let not_found = || head("404 Not Found", String::new(), b"{\"error\":\"not found\"}");
    if let Some(id) = path
        .strip_prefix("/api/models/")
        .and_then(|p| p.strip_suffix("/revision/main"))
    {
        let Some(files) = repos.get(id) else {
            return not_found();
        };
        let siblings: Vec<_> = files
            .iter()
            .map(|(n, _)| serde_json::json!({ "rfilename": n }))
            .collect();
        let body = serde_json::json!({ "sha": COMMIT, "siblings": siblings }).to_string();
        return head(
            "200 OK",
            "Content-Type: application/json\r\n".into(),
            body.as_bytes(),
        );
    }
    let Some((id, file)) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once("/resolve/main/"))
    else {
        return not_found();
    };
    let Some((_, bytes)) = repos
        .get(id)
        .and_then(|fs| fs.iter().find(|(n, _)| n == file))
    else {
        return not_found();
    };
    let (start, end) = match range.and_then(|r| r.split_once('-')) {
        Some((a, b)) => (
            a.parse::<usize>().unwrap_or(0),
            b.parse::<usize>().unwrap_or(bytes.len() - 1),
        ),
        None => (0, bytes.len() - 1),
    };
    // an etag per content (FNV-1a), as the hub's is per blob
    let etag = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let headers = format!(
        "Content-Range: bytes {start}-{end}/{}\r\nETag: \"{etag:016x}\"\r\nX-Repo-Commit: {COMMIT}\r\n",
        bytes.len()
    );
    head("206 Partial Content", headers, &bytes[start..=end])
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// The qwen2 fixture folder as a hub repository, with files a model does not need.
fn qwen2_repo() -> Vec<(String, Vec<u8>)> {
    let dir = fixture("qwen2");
    let mut files: Vec<(String, Vec<u8>)> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|n| (n.to_string(), read(&dir.join(n))))
        .collect();
    files.push(("README.md".into(), b"# tiny".to_vec()));
    files.push(("config_hub.json".into(), read(&dir.join("config_hub.json"))));
    files
}

/// Point the hub variables at `endpoint` and a fresh cache; the cache folder lives as long as the
/// returned guard.
fn hub_env(endpoint: &str) -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_ENDPOINT", endpoint);
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::remove_var("HF_TOKEN");
    cache
}

#[test]
fn a_missing_id_is_downloaded_into_the_cache_then_read_from_it() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let repo = qwen2_repo();
    let (endpoint, log) = serve(HashMap::from([("plumb-test/qwen2-tiny".to_string(), repo)]));
    let cache = hub_env(&endpoint);
    let files = plumb_nn::resolve_model("plumb-test/qwen2-tiny").unwrap();
    let snap = cache
        .path()
        .join("models--plumb-test--qwen2-tiny/snapshots")
        .join(COMMIT);
    assert_eq!(files.weights, snap.join("model.safetensors"));
    assert_eq!(
        read(&files.weights),
        read(&fixture("qwen2/model.safetensors"))
    );
    assert_eq!(files.tokenizer, Some(snap.join("tokenizer.json")));
    assert!(!snap.join("README.md").exists() && !snap.join("config_hub.json").exists());
    let main = cache
        .path()
        .join("models--plumb-test--qwen2-tiny/refs/main");
    assert_eq!(std::fs::read_to_string(main).unwrap().trim(), COMMIT);
    // the downloaded folder is a model: it plans and names its architecture
    let plan = plumb_nn::pipeline::plan_model(&files, &cpu(), Some(plumb_core::DType::F32), false)
        .unwrap();
    assert_eq!(plan.architecture, "Qwen2");

    // again, with the hub gone: from the cache, no request
    let before = log.lock().unwrap().len();
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");
    let again = plumb_nn::resolve_model("plumb-test/qwen2-tiny").unwrap();
    assert_eq!(again.weights, files.weights);
    assert_eq!(log.lock().unwrap().len(), before);
}

#[test]
fn a_repository_of_several_ggufs_needs_the_file_named() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let repo = vec![
        ("a.gguf".to_string(), read(&fixture("llama_rope.gguf"))),
        ("b.gguf".to_string(), read(&fixture("llama_rope_yarn.gguf"))),
    ];
    let (endpoint, _) = serve(HashMap::from([("plumb-test/ggufs".to_string(), repo)]));
    let _cache = hub_env(&endpoint);
    let e = plumb_nn::resolve_model("plumb-test/ggufs")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("plumb-test/ggufs") && e.contains("a.gguf") && e.contains("b.gguf"),
        "{e}"
    );
    let files = plumb_nn::resolve_model("plumb-test/ggufs/b.gguf").unwrap();
    assert!(files.weights.ends_with("b.gguf"), "{:?}", files.weights);
    assert_eq!(read(&files.weights), read(&fixture("llama_rope_yarn.gguf")));
    let e = plumb_nn::resolve_model("plumb-test/ggufs/c.gguf")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no file c.gguf"), "{e}");
}

#[test]
fn unreachable_unknown_and_offline_are_clear_errors() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let (endpoint, log) = serve(HashMap::new());
    let _cache = hub_env(&endpoint);
    // a repository the hub does not have
    let e = plumb_nn::resolve_model("plumb-test/nothing")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'plumb-test/nothing'") && e.contains(&endpoint) && e.contains("404"),
        "{e}"
    );
    // nothing listening
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");
    let e = plumb_nn::resolve_model("plumb-test/nothing")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("downloading it from http://127.0.0.1:9 failed"),
        "{e}"
    );
    // offline: the local lookup's error, without a request
    std::env::set_var("HF_ENDPOINT", &endpoint);
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let before = log.lock().unwrap().len();
    let e = plumb_nn::resolve_model("plumb-test/nothing")
        .unwrap_err()
        .to_string();
    std::env::remove_var("HF_HUB_OFFLINE");
    assert!(e.contains("is not in the Hugging Face cache"), "{e}");
    assert_eq!(log.lock().unwrap().len(), before);
}
