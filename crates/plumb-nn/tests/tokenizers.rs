//! Tokenizer ids identical to the reference tokenizers (fixtures from scripts/make_fixtures.py).

mod common;

use common::*;
use plumb_nn::chat::{ChatTemplate, Message};
use plumb_nn::gguf::GgufFile;
use plumb_nn::Tokenizer;

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn minilm_tokenizer_matches_sentence_transformers() {
    let fx = fixture_json("minilm.json");
    let max = fx["max_seq_length"].as_u64().unwrap() as usize;
    let tok = Tokenizer::from_file(minilm_dir().join("tokenizer.json")).unwrap();
    let items = fx["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| ids(&i["ids"]).len() > 128),
        "fixture needs a text > 128 tokens"
    );
    for it in items {
        let text = it["text"].as_str().unwrap();
        let want = ids(&it["ids"]);
        let got = tok.encode_batch(&[text], max).unwrap();
        assert_eq!(got.ids, want, "text {text:?}");
        assert!(got.mask.iter().all(|&m| m == 1));
    }
    // a batch pads to the longest with a mask
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let b = tok.encode_batch(&texts, max).unwrap();
    assert_eq!(b.batch, texts.len());
    for (r, it) in items.iter().enumerate() {
        let n = ids(&it["ids"]).len();
        let row = &b.mask[r * b.seq..(r + 1) * b.seq];
        assert_eq!(row.iter().filter(|&&m| m == 1).count(), n);
    }
}

#[test]
fn smollm2_gguf_tokenizer_matches_transformers() {
    let fx = fixture_json("smollm2.json");
    let f = GgufFile::open(smollm2_file()).unwrap();
    let tok = Tokenizer::from_gguf(&f).unwrap();
    assert_eq!(tok.vocab_size(), 49152);
    for t in fx["tokenizer"].as_array().unwrap() {
        let text = t["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, false).unwrap(),
            ids(&t["ids"]),
            "text {text:?}"
        );
        // byte-level BPE round-trips
        assert_eq!(tok.decode(&ids(&t["ids"]), false).unwrap(), text);
    }
    let chat = ChatTemplate::from_gguf(&f).unwrap().unwrap();
    for run in fx["runs"].as_array().unwrap() {
        let prompt = run["prompt"].as_str().unwrap();
        let text = if run["chat"].as_bool().unwrap() {
            chat.render(&[Message::new("user", prompt)], true).unwrap()
        } else {
            prompt.to_string()
        };
        assert_eq!(
            text,
            run["text"].as_str().unwrap(),
            "chat template of {prompt:?}"
        );
        assert_eq!(
            tok.encode(&text, false).unwrap(),
            ids(&run["prompt_ids"]),
            "{prompt:?}"
        );
    }
    assert!(tok.is_eos(tok.token_to_id("<|im_end|>").unwrap()));
}
