//! Chat templates. Plumb implements the ChatML family directly (SmolLM2, Qwen, …: turns framed by
//! `<|im_start|>role\n … <|im_end|>\n`), taking the default system message, if any, from the
//! model's own Jinja template (GGUF `tokenizer.chat_template` or tokenizer_config.json). Other
//! templates are reported as unsupported rather than guessed.

use plumb_core::{Error, Result};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// ChatML, with the system message the template inserts when the conversation has none
    ChatMl { default_system: Option<String> },
}

const START: &str = "<|im_start|>";
const END: &str = "<|im_end|>";

impl ChatTemplate {
    /// Recognise a Jinja chat template; `origin` names where it came from for errors.
    pub fn from_jinja(template: &str, origin: &Path) -> Result<ChatTemplate> {
        if !template.contains(START) || !template.contains(END) {
            return Err(Error::format(
                origin,
                "chat template is not ChatML (<|im_start|> … <|im_end|>); plumb implements ChatML templates",
            ));
        }
        // A default system turn is written as a literal: '<|im_start|>system\n…<|im_end|>'
        // (the newline may be a real one or a `\n` escape inside the Jinja string literal)
        let default_system = ["\n", "\\n"].iter().find_map(|nl| {
            let marker = format!("{START}system{nl}");
            let i = template.find(&marker)?;
            let rest = &template[i + marker.len()..];
            let body = &rest[..rest.find(END)?];
            // a literal, not an expression such as message['content']
            (!body.contains('\'') && !body.contains('{')).then(|| body.replace("\\n", "\n"))
        });
        Ok(ChatTemplate::ChatMl { default_system })
    }

    /// The template of a GGUF file's metadata.
    pub fn from_gguf(f: &crate::gguf::GgufFile) -> Result<Option<ChatTemplate>> {
        match f.meta("tokenizer.chat_template").and_then(|v| v.as_str()) {
            Some(t) => Ok(Some(Self::from_jinja(t, f.path())?)),
            None => Ok(None),
        }
    }

    /// The template of a tokenizer_config.json.
    pub fn from_tokenizer_config(path: &Path) -> Result<Option<ChatTemplate>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
        match v.get("chat_template").and_then(|t| t.as_str()) {
            Some(t) => Ok(Some(Self::from_jinja(t, path)?)),
            None => Ok(None),
        }
    }

    /// Render a conversation; `add_generation_prompt` opens the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        let ChatTemplate::ChatMl { default_system } = self;
        let mut s = String::new();
        if let (Some(sys), Some(first)) = (default_system, messages.first()) {
            if first.role != "system" {
                s.push_str(&format!("{START}system\n{sys}{END}\n"));
            }
        }
        for m in messages {
            s.push_str(&format!("{START}{}\n{}{END}\n", m.role, m.content));
        }
        if add_generation_prompt {
            s.push_str(&format!("{START}assistant\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_template() {
        let t = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        let c = ChatTemplate::from_jinja(t, Path::new("x")).unwrap();
        assert_eq!(
            c.render(&[Message::new("user", "Hi")], true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(ChatTemplate::from_jinja("{{ bos_token }}[INST]", Path::new("x")).is_err());
    }
}
