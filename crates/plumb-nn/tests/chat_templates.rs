//! Chat templates rendered by plumb against transformers' own renderer
//! (fixtures/chat_templates.json from scripts/make_chat_fixtures.py), and the prompt ids of a
//! rendered chat (BOS written by the template, never doubled or added).

mod common;

use common::{fixture, fixture_json, smollm2_file};
use plumb_nn::chat::{ChatTemplate, Message};
use plumb_nn::generate::chat_ids;
use plumb_nn::gguf::GgufFile;
use plumb_nn::Tokenizer;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn template_of(t: &Value) -> ChatTemplate {
    let name = t["name"].as_str().unwrap();
    let mut c = ChatTemplate::from_jinja(t["template"].as_str().unwrap(), Path::new(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (k, v) in t["special_tokens"].as_object().unwrap() {
        c = c.with_special_token(k, v.as_str().unwrap());
    }
    c
}

fn messages_of(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn templates_render_as_transformers_renders_them() {
    let fx = fixture_json("chat_templates.json");
    let templates: HashMap<&str, ChatTemplate> = fx["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), template_of(t)))
        .collect();
    assert!(templates.len() >= 10, "{} templates", templates.len());
    let (mut rendered, mut rejected) = (0, 0);
    for case in fx["cases"].as_array().unwrap() {
        let name = case["template"].as_str().unwrap();
        let messages = &case["messages"];
        let gen = case["add_generation_prompt"].as_bool().unwrap();
        let (tools, documents) = (case.get("tools"), case.get("documents"));
        let what = format!(
            "{name}, {} messages, add_generation_prompt {gen}, tools {}, documents {}",
            messages.as_array().unwrap().len(),
            tools.is_some(),
            documents.is_some()
        );
        // plain conversations through `render` (role and content), the others as JSON
        let got = if tools.is_none() && documents.is_none() {
            templates[name].render(&messages_of(messages), gen)
        } else {
            templates[name].render_with(messages, tools, documents, gen)
        };
        match (case.get("expected"), case.get("error")) {
            (Some(want), None) => {
                let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(got, want.as_str().unwrap(), "{what}");
                rendered += 1;
            }
            (None, Some(err)) => {
                let e = match got {
                    Ok(s) => panic!("{what}: transformers raised {err}, plumb rendered {s:?}"),
                    Err(e) => e.to_string(),
                };
                // a format error naming the template, with the template's own message
                assert!(e.contains(name), "{what}: {e}");
                assert!(e.contains(err.as_str().unwrap()), "{what}: {e} lacks {err}");
                rejected += 1;
            }
            _ => panic!("{what}: a case has either 'expected' or 'error'"),
        }
    }
    // the fixture has real rejections (Gemma's system role, Mistral/Llama-2 alternation)
    assert!(
        rendered >= 130 && rejected >= 10,
        "{rendered} rendered, {rejected} rejected"
    );
}

/// The fixture's SmolLM2 template is the one the GGUF carries, with the same special tokens.
#[test]
fn smollm2_fixture_template_is_the_gguf_one() {
    let fx = fixture_json("chat_templates.json");
    let t = &fx["templates"][0];
    assert_eq!(t["name"], "smollm2");
    let f = GgufFile::open(smollm2_file()).unwrap();
    assert_eq!(
        f.meta("tokenizer.chat_template").and_then(|v| v.as_str()),
        t["template"].as_str()
    );
    let c = ChatTemplate::from_gguf(&f).unwrap().unwrap();
    let want: Vec<(String, String)> = t["special_tokens"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let mut got = c.special_tokens().to_vec();
    let mut want = want;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// transformers encodes a rendered chat with add_special_tokens=False: BOS comes only from a
/// template that writes `{{ bos_token }}`, once, even for a tokenizer that adds BOS itself.
#[test]
fn chat_ids_take_bos_from_the_template_only() {
    for (file, bos_text) in [("llama3.gguf", "<|begin_of_text|>"), ("spm.gguf", "<s>")] {
        let tok = Tokenizer::from_gguf(&GgufFile::open(fixture(file)).unwrap()).unwrap();
        assert!(tok.add_bos, "{file}");
        let bos = tok.bos_id.unwrap();
        let msgs = [Message::new("user", "hello world")];
        let with = ChatTemplate::from_jinja(
            "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",
            Path::new(file),
        )
        .unwrap()
        .with_special_token("bos_token", bos_text);
        let ids = chat_ids(&tok, &with, &msgs).unwrap();
        let body = tok.encode("hello world", false).unwrap();
        assert_eq!(ids[0], bos, "{file}");
        assert_eq!(&ids[1..], &body[..], "{file}: one BOS, then the text");
        let without = ChatTemplate::from_jinja(
            "{% for m in messages %}{{ m.content }}{% endfor %}",
            Path::new(file),
        )
        .unwrap();
        assert_eq!(chat_ids(&tok, &without, &msgs).unwrap(), body, "{file}");
    }
}
