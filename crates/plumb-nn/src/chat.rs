//! Chat templates: the model's own Jinja template (GGUF `tokenizer.chat_template`,
//! tokenizer_config.json's `chat_template`, or a `chat_template.jinja` file next to the model, as
//! transformers 5 saves it), rendered with minijinja in an environment set up as transformers'
//! `apply_chat_template` sets up Jinja2 (see [`crate::jinja`]). The template sees what
//! transformers passes it: `messages`, `add_generation_prompt`, `tools` and `documents` (none
//! unless given: [`ChatTemplate::render_with`]), and the tokenizer's named special tokens
//! (`bos_token`, `eos_token`, …) as strings.

use plumb_core::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The special-token attributes transformers passes to a template (its
/// `SPECIAL_TOKENS_ATTRIBUTES`), in its order.
pub const SPECIAL_TOKEN_NAMES: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// The template's name inside its environment.
const NAME: &str = "chat";

/// A compiled chat template with the special tokens it is rendered with.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    /// where the template came from (for errors)
    origin: PathBuf,
    /// `(name, text)`: `bos_token`, `eos_token`, … as the tokenizer spells them
    special_tokens: Vec<(String, String)>,
}

fn jinja_err(origin: &Path, e: &minijinja::Error) -> Error {
    // the detail of a raise_exception call is its message
    let mut msg = format!("chat template: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    Error::format(origin, msg)
}

impl ChatTemplate {
    /// Compile a Jinja chat template; `origin` names where it came from for errors.
    pub fn from_jinja(template: &str, origin: &Path) -> Result<ChatTemplate> {
        let mut env = crate::jinja::environment();
        env.add_template_owned(NAME, template.to_string())
            .map_err(|e| jinja_err(origin, &e))?;
        Ok(ChatTemplate {
            env,
            origin: origin.to_path_buf(),
            special_tokens: Vec::new(),
        })
    }

    /// Compile the Jinja chat template in the file at `path`.
    pub fn from_file(path: &Path) -> Result<ChatTemplate> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_jinja(&text, path)
    }

    /// Set a special token the template sees (`bos_token`, `eos_token`, …).
    pub fn with_special_token(mut self, name: &str, text: &str) -> ChatTemplate {
        self.special_tokens.retain(|(n, _)| n != name);
        self.special_tokens
            .push((name.to_string(), text.to_string()));
        self
    }

    /// The special tokens the template sees.
    pub fn special_tokens(&self) -> &[(String, String)] {
        &self.special_tokens
    }

    /// The template of a GGUF file's metadata, with the special tokens its
    /// `tokenizer.ggml.*_token_id` name.
    pub fn from_gguf(f: &crate::gguf::GgufFile) -> Result<Option<ChatTemplate>> {
        let Some(t) = f.meta("tokenizer.chat_template").and_then(|v| v.as_str()) else {
            return Ok(None);
        };
        let mut c = Self::from_jinja(t, f.path())?;
        let tokens = f.meta("tokenizer.ggml.tokens").and_then(|v| v.as_array());
        for (name, key) in [
            ("bos_token", "tokenizer.ggml.bos_token_id"),
            ("eos_token", "tokenizer.ggml.eos_token_id"),
            ("unk_token", "tokenizer.ggml.unknown_token_id"),
            ("sep_token", "tokenizer.ggml.seperator_token_id"),
            ("pad_token", "tokenizer.ggml.padding_token_id"),
        ] {
            let text = f
                .meta(key)
                .and_then(|v| v.as_i64())
                .and_then(|id| tokens?.get(usize::try_from(id).ok()?)?.as_str());
            if let Some(text) = text {
                c = c.with_special_token(name, text);
            }
        }
        Ok(Some(c))
    }

    /// The template of a tokenizer_config.json (`chat_template`: a string, or a list of
    /// `{"name", "template"}` of which the one named `default` is used), with the special
    /// tokens it names (strings or `{"content": …}` objects). `jinja_file`, a
    /// `chat_template.jinja` next to the model, takes priority over the config's template, as
    /// in transformers.
    pub fn from_tokenizer_config(
        path: Option<&Path>,
        jinja_file: Option<&Path>,
    ) -> Result<Option<ChatTemplate>> {
        let config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Error::format(p, format!("not valid JSON: {e}")))?;
                Some((p, v))
            }
            None => None,
        };
        let template = match (jinja_file, &config) {
            (Some(j), _) => {
                let t = std::fs::read_to_string(j).map_err(|e| Error::io(j, e))?;
                Self::from_jinja(&t, j)?
            }
            (None, Some((p, v))) => match v.get("chat_template") {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(t) => Self::from_jinja(config_template(t, p)?, p)?,
            },
            (None, None) => return Ok(None),
        };
        let mut template = template;
        if let Some((_, v)) = &config {
            for name in SPECIAL_TOKEN_NAMES {
                let text = match v.get(name) {
                    Some(serde_json::Value::String(s)) => Some(s.as_str()),
                    Some(o) => o.get("content").and_then(|c| c.as_str()),
                    None => None,
                };
                if let Some(text) = text {
                    template = template.with_special_token(name, text);
                }
            }
        }
        Ok(Some(template))
    }

    /// Render a conversation; `add_generation_prompt` opens the assistant's turn. A template
    /// error, or a conversation the template rejects (`raise_exception`), is a format error
    /// naming the template's file.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let messages = serde_json::to_value(messages)
            .map_err(|e| Error::invalid("chat template", e.to_string()))?;
        self.render_with(&messages, None, None, add_generation_prompt)
    }

    /// [`ChatTemplate::render`] of messages as transformers takes them (a JSON list of objects
    /// with any fields: an assistant's `tool_calls`, a `tool` message's `name` or
    /// `tool_call_id`, content that is a string or null) and with `tools` (JSON schemas of the
    /// functions the model may call, as `apply_chat_template(tools=…)` passes dicts) and
    /// `documents` (for retrieval-augmented templates), each `none` in the template when absent.
    pub fn render_with(
        &self,
        messages: &serde_json::Value,
        tools: Option<&serde_json::Value>,
        documents: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        use minijinja::Value;
        if !messages.is_array() {
            return Err(Error::format(
                &self.origin,
                "chat template: the messages are not a list",
            ));
        }
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| jinja_err(&self.origin, &e))?;
        let or_none =
            |v: Option<&serde_json::Value>| v.map_or(Value::from(()), Value::from_serialize);
        let mut ctx: Vec<(String, Value)> = vec![
            ("messages".into(), Value::from_serialize(messages)),
            ("tools".into(), or_none(tools)),
            ("documents".into(), or_none(documents)),
            (
                "add_generation_prompt".into(),
                Value::from(add_generation_prompt),
            ),
        ];
        for (name, text) in &self.special_tokens {
            ctx.push((name.clone(), Value::from(text.as_str())));
        }
        let ctx: Value = ctx.into_iter().collect();
        tmpl.render(ctx).map_err(|e| jinja_err(&self.origin, &e))
    }
}

/// The template text of tokenizer_config.json's `chat_template` value.
fn config_template<'a>(t: &'a serde_json::Value, path: &Path) -> Result<&'a str> {
    if let Some(s) = t.as_str() {
        return Ok(s);
    }
    let list = t.as_array().ok_or_else(|| {
        Error::format(
            path,
            "chat_template is neither a string nor a list of templates",
        )
    })?;
    let named = |n: &str| {
        list.iter()
            .find(|e| e.get("name").and_then(|v| v.as_str()) == Some(n))
            .and_then(|e| e.get("template"))
            .and_then(|v| v.as_str())
    };
    named("default").ok_or_else(|| {
        let names: Vec<&str> = list
            .iter()
            .filter_map(|e| e.get("name").and_then(|v| v.as_str()))
            .collect();
        Error::format(
            path,
            format!(
                "chat_template lists several templates and none is named 'default' ({})",
                names.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    #[test]
    fn smollm2_template() {
        let c = ChatTemplate::from_jinja(SMOLLM2, Path::new("x")).unwrap();
        assert_eq!(
            c.render(&[Message::new("user", "Hi")], true).unwrap(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn errors_name_the_template_file() {
        // a syntax error at compile time
        let e = ChatTemplate::from_jinja("{% if %}", Path::new("tpl.jinja")).unwrap_err();
        assert!(e.to_string().contains("tpl.jinja"), "{e}");
        // raise_exception at render time, with its message
        let t = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok";
        let c = ChatTemplate::from_jinja(t, Path::new("cfg.json")).unwrap();
        assert_eq!(c.render(&[Message::new("user", "a")], false).unwrap(), "ok");
        let e = c.render(&[Message::new("system", "a")], false).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("cfg.json") && s.contains("System role not supported"),
            "{s}"
        );
    }

    #[test]
    fn tokenizer_config_forms() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tokenizer_config.json");
        std::fs::write(
            &cfg,
            r#"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}],
                "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}"#,
        )
        .unwrap();
        let c = ChatTemplate::from_tokenizer_config(Some(&cfg), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.render(&[], false).unwrap(), "<s>D</s>");
        // chat_template.jinja wins over the config's template; the tokens still come from it
        let jinja = dir.path().join("chat_template.jinja");
        std::fs::write(&jinja, "J{{ bos_token }}\n").unwrap();
        let c = ChatTemplate::from_tokenizer_config(Some(&cfg), Some(&jinja))
            .unwrap()
            .unwrap();
        assert_eq!(c.render(&[], false).unwrap(), "J<s>");
        // several templates and no default
        std::fs::write(
            &cfg,
            r#"{"chat_template": [{"name": "a", "template": "A"}]}"#,
        )
        .unwrap();
        let e = ChatTemplate::from_tokenizer_config(Some(&cfg), None).unwrap_err();
        assert!(e.to_string().contains("'default'"), "{e}");
        std::fs::write(&cfg, r#"{"eos_token": "</s>"}"#).unwrap();
        assert!(ChatTemplate::from_tokenizer_config(Some(&cfg), None)
            .unwrap()
            .is_none());
    }
}
