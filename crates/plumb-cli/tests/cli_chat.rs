//! `plumb generate --chat` with a conversation file, tools and documents, through the real
//! binary and the real SmolLM2 GGUF (scripts/fetch_models.sh): the prompt it encodes is the one
//! the library renders from the same inputs (the templates themselves are checked against
//! transformers in plumb-nn's chat_templates tests), and bad files are clean errors.

use plumb_nn::chat::ChatTemplate;
use plumb_nn::gguf::GgufFile;
use plumb_nn::Tokenizer;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// SmolLM2 from the model cache (`$PLUMB_MODELS` or target/models); fails, never skips, when
/// scripts/fetch_models.sh has not run.
fn smollm2_file() -> std::path::PathBuf {
    let dir = match std::env::var_os("PLUMB_MODELS") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
    };
    let p = dir.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch_models.sh",
        p.display()
    );
    p
}

fn plumb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap()
}

/// The prompt length `generate` reports on stderr ("N prompt tokens at …").
fn prompt_tokens(out: &std::process::Output) -> usize {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "generate failed: {err}");
    err.lines()
        .find_map(|l| {
            l.split(" prompt tokens")
                .next()
                .filter(|_| l.contains(" prompt tokens"))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no prompt token count in: {err}"))
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn messages_tools_and_documents_reach_the_template() {
    let model = smollm2_file();
    let gguf = GgufFile::open(&model).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = json!([
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."}
    ]);
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let docs = json!([{"title": "Rome", "text": "Rome is the capital of Italy."}]);
    // a template that renders all three, as a file given with --chat-template
    let tmpl = "{% if documents %}{% for d in documents %}[{{ d.title }}] {{ d.text }}\n{% endfor %}{% endif %}\
        {% if tools %}{{ tools | tojson }}\n{% endif %}\
        {% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
        <|im_start|>assistant\n";
    let tmpl_path = dir.path().join("t.jinja");
    std::fs::write(&tmpl_path, tmpl).unwrap();
    let template = ChatTemplate::from_jinja(tmpl, &tmpl_path).unwrap();
    let (m, t, d) = (
        write(dir.path(), "m.json", &history),
        write(dir.path(), "t.json", &tools),
        write(dir.path(), "d.json", &docs),
    );
    let model = model.to_str().unwrap();
    let t_arg = tmpl_path.to_str().unwrap();
    let base = [
        "generate",
        model,
        "--chat",
        "--chat-template",
        t_arg,
        "--max-tokens",
        "1",
    ];
    let mut conv = history.as_array().unwrap().clone();
    conv.push(json!({"role": "user", "content": "And of Italy?"}));
    let conv = Value::Array(conv);
    for (extra, tools, docs) in [
        (vec![], None, None),
        (vec!["--tools", &t], Some(&tools), None),
        (
            vec!["--tools", &t, "--documents", &d],
            Some(&tools),
            Some(&docs),
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(["--messages", &m, "--prompt", "And of Italy?"]);
        args.extend(extra.iter().copied());
        let text = template.render_with(&conv, tools, docs, true).unwrap();
        let want = tok.encode(&text, false).unwrap().len();
        assert_eq!(prompt_tokens(&plumb(&args)), want, "{args:?}");
    }
    // --messages alone (no --prompt) continues the conversation as given
    let mut args = base.to_vec();
    args.extend(["--messages", &m]);
    let text = template.render_with(&history, None, None, true).unwrap();
    assert_eq!(
        prompt_tokens(&plumb(&args)),
        tok.encode(&text, false).unwrap().len()
    );
}

#[test]
fn bad_conversation_files_are_clean_errors() {
    let model = smollm2_file();
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_list = write(dir.path(), "obj.json", &json!({"role": "user"}));
    let no_role = write(dir.path(), "norole.json", &json!([{"content": "hi"}]));
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[{").unwrap();
    let broken = broken.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--tools", not_list.as_str(), "--prompt", "x"],
            "--tools: expected a JSON list",
        ),
        (
            vec!["--messages", no_role.as_str()],
            "message 0 is not an object with a string 'role'",
        ),
        (
            vec!["--documents", broken, "--prompt", "x"],
            "--documents: not JSON",
        ),
    ] {
        let mut a = vec!["generate", model, "--chat"];
        a.extend(args.iter().copied());
        let out = plumb(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{a:?}: {err}");
        assert!(
            err.contains(want) && err.contains(dir.path().to_str().unwrap()),
            "{a:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // --messages without --chat is refused by the argument parser
    let out = plumb(&["generate", model, "--messages", &no_role]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--kv-dtype f16` keeps the cache in f16 and says so (plumb-nn's llama tests bound what that
/// does to the logits), `check` plans and measures it; a dtype that is not a float is refused
/// before the model loads.
#[test]
fn kv_cache_dtype_is_chosen_and_reported() {
    let model = smollm2_file();
    let m = model.to_str().unwrap();
    let run = |kv: &str| {
        let out = plumb(&[
            "generate",
            m,
            "--prompt",
            "The capital of France is",
            "--max-tokens",
            "12",
            "--device",
            "cpu",
            "--kv-dtype",
            kv,
        ]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "--kv-dtype {kv}: {err}");
        assert!(err.contains(&format!("KV cache in {kv}")), "{err}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for kv in ["f32", "f16"] {
        assert!(!run(kv).trim().is_empty(), "--kv-dtype {kv}: no text");
    }
    // check plans it and --measure runs it against the f32 reference
    let out = plumb(&[
        "check",
        m,
        "--device",
        "cpu",
        "--kv-dtype",
        "f16",
        "--measure",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("KV cache in f16"), "{text}");
    assert!(text.contains("with the KV cache in f16 vs f32"), "{text}");
    let out = plumb(&["generate", m, "--prompt", "hi", "--kv-dtype", "i32"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kv cache: dtype i32"), "{err}");
}
