#!/usr/bin/env python3
"""Reference tokenizations for plumb-nn's GGUF tokenizer tests (crates/plumb-nn/tests/gguf_tokenizers.rs).

Trains three tiny tokenizers on the varied text below, writes each as a vocabulary-only GGUF the
way llama.cpp's convert_hf_to_gguf.py writes that kind of vocabulary, and records the ids and
decodings of a set of test texts from the reference implementations:

- spm.gguf        SentencePiece BPE (model_type=bpe, byte_fallback, Llama-2 trainer options:
                  identity normalization, no whitespace collapsing, dummy prefix, split digits);
                  GGUF tokenizer.ggml.model=llama with tokens, scores and token_type (1 normal,
                  2 unknown, 3 control, 6 byte) and no merges. References: `sp_ids`, sentencepiece's
                  own encode applied the way llama.cpp tokenizes with special tokens parsed (text
                  cut at control/unknown token strings, each fragment encoded with its dummy
                  prefix); `sp_decoded`, sentencepiece's decode; `hf_*`, transformers loading the
                  GGUF (AutoTokenizer, gguf_file=). transformers 5 uses Metaspace with
                  prepend_scheme="first", so it differs from sentencepiece/llama.cpp on text that
                  starts with a space and after special tokens; the script prints where.
- llama3.gguf     byte-level BPE trained with the `tokenizers` library using the Llama-3 split
                  regex; GGUF tokenizer.ggml.model=gpt2, pre=llama-bpe, with merges.
- qwen2.gguf      the same vocabulary split with Qwen2's regex (digits one by one); pre=qwen2.
                  References for both: the trained `tokenizers.Tokenizer` itself, and transformers
                  loading the GGUF.
- gguf_tokenizers.json   for each file: the texts, ids with and without special tokens, decodings;
                  for spm.gguf also the merges transformers' generate_merges derives from it.

Everything is deterministic for a given sentencepiece/tokenizers version (versions are recorded).

Rerun (transformers' GGUF reader imports torch; the CPU build is enough):
        python3 -m venv /tmp/tok-venv && /tmp/tok-venv/bin/pip install sentencepiece gguf \
            transformers tokenizers numpy protobuf torch
        /tmp/tok-venv/bin/python scripts/make_tokenizer_fixtures.py
"""
import io
import json
import sys
from importlib.metadata import version
from pathlib import Path

import gguf
import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer
from transformers.tokenization_utils_base import generate_merges

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "plumb-nn" / "tests" / "fixtures"

# Llama-3 (llama.cpp pre "llama-bpe") and Qwen2 (pre "qwen2") split regexes, as in llama.cpp's
# llama-vocab.cpp and transformers' tokenization_qwen2.py
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. The dog, however, was not amused at all.",
    "Plumb loads models from GGUF files and runs them on the best device it can find.",
    "It's a tokenizer test: they'll see we've done what I'd said, and you're right, I'm sure.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 3.14159 2.71828 1,000,000 and 2026-11-24.",
    "Prices were $12.50, €9.99 and £7; the temperature rose to 23°C at 14:30 on Monday.",
    "Naïve café façade, déjà vu, résumé, Zürich, São Paulo, Kraków, El Niño, Ærøskøbing.",
    "北京是中国的首都。东京是日本的首都。我们在学习中文和日本語。",
    "Привет, мир! Как дела? Это простой тест токенизатора.",
    "def main():\n    for i in range(10):\n        print(f\"value {i}\")\n    return 0\n",
    "fn main() {\n\tlet v: Vec<u32> = (0..8).collect();\n\tprintln!(\"{v:?}\");\n}\n",
    "    Indented text with  double  spaces   and trailing spaces   \n\nNew paragraph.",
    "Email me at someone@example.com or visit https://example.org/path?query=1&x=2.",
    "Emoji are rare here 🙂 but they appear once or twice 🚀.",
    "Quotes “like these” and ‘these’ — with dashes – and ellipses… are common in prose.",
    "UPPER CASE TEXT, lower case text, Title Case Text, and MiXeD cAsE text all show up.",
]


def corpus():
    lines = []
    for rep in range(40):
        for i, p in enumerate(PARAGRAPHS):
            # vary the repetitions a little so counts differ between pieces
            if (rep + i) % 3 != 0 or i < 6:
                lines.append(p)
        lines.append(f"Line {rep}: {rep * 37 % 1000} items cost {rep * 1.25:.2f} at {rep % 24:02d}:00.")
    return lines


TEXTS = [
    "",
    " ",
    "   ",
    "a",
    "Hello world",
    " Hello world",
    "Hello  world",
    "   leading spaces",
    "trailing spaces   ",
    "multiple   inner    spaces",
    "line one\nline two\n\nline four\n",
    "tabs\tand\r\nCRLF",
    "digits 1234567890 and 3.14159 and 2026-11-24",
    "Naïve café façade, déjà vu",
    "北京是中国的首都",
    "東京タワー",
    "emoji 🙂🚀 and ✨ and 🦀",
    "rare letters ǅ ß Ω ŋ",
    "It's what they'll say, I'd think; DON'T SHOUT.",
    "fn main() {\n\tprintln!(\"hi\");\n}",
    "text with </s> inside",
    "<s>starts with bos",
    "an <unk> token",
    "<|begin_of_text|>hello<|eot_id|>",
    "The quick brown fox jumps over the lazy dog.",
]


def versions(*pkgs):
    return {p: version(p) for p in pkgs} | {"python": sys.version.split()[0]}


def hf_refs(tok, texts):
    out = []
    for t in texts:
        plain = tok(t, add_special_tokens=False)["input_ids"]
        out.append(
            {
                "text": t,
                "hf_ids": plain,
                "hf_ids_special": tok(t)["input_ids"],
                "hf_decoded": tok.decode(plain),
            }
        )
    return out


def make_spm():
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=buf,
        model_type="bpe",
        vocab_size=600,
        byte_fallback=True,
        character_coverage=0.999,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        max_sentencepiece_length=16,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        # llama.cpp's convert_hf_to_gguf: SentencePieceTokenTypes
        if sp.is_unknown(i):
            types.append(gguf.TokenType.UNKNOWN)
        elif sp.is_control(i):
            types.append(gguf.TokenType.CONTROL)
        elif sp.is_unused(i):
            types.append(gguf.TokenType.UNUSED)
        elif sp.is_byte(i):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    path = OUT / "spm.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    write(w)
    tok = AutoTokenizer.from_pretrained(str(OUT), gguf_file=path.name)
    items = hf_refs(tok, TEXTS)
    specials = {t: i for i, t in enumerate(tokens) if types[i] in (gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN)}
    for it in items:
        it["sp_ids"] = spm_fragments(sp, specials, it["text"])
        it["sp_decoded"] = sp.decode(sp.encode(it["text"]))
    # the merges transformers derives from the vocabulary and scores (its GGUF loader's way)
    merges = generate_merges({t: i for i, t in enumerate(tokens)}, dict(zip(tokens, scores)))
    return {
        "file": path.name,
        "vocab_size": len(tokens),
        "merges": [[a, b] for a, b in merges],
        "items": items,
    }


def spm_fragments(sp, specials, text):
    """llama.cpp's SPM tokenization with special tokens parsed: the text is cut at control and
    unknown token strings (leftmost, longest first); each raw fragment is encoded by sentencepiece,
    whose dummy prefix is llama.cpp's `add_space_prefix && is_prev_special` space."""
    ids, raw = [], ""
    i = 0
    while i < len(text):
        hit = max((t for t in specials if text.startswith(t, i)), key=len, default=None)
        if hit is None:
            raw += text[i]
            i += 1
            continue
        ids += sp.encode(raw) if raw else []
        raw = ""
        ids.append(specials[hit])
        i += len(hit)
    return ids + (sp.encode(raw) if raw else [])


def byte_level_split(split: str):
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def make_bpe(name: str, pre: str, split: str):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tk = Tokenizer(models.BPE())
    # both vocabularies are learned on the Llama-3 split, so they hold multi-digit tokens that
    # Qwen2's split (one digit at a time) must then never produce
    tk.pre_tokenizer = byte_level_split(LLAMA3_SPLIT)
    tk.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(corpus(), trainer=tr)
    tk.pre_tokenizer = byte_level_split(split)
    vocab = tk.get_vocab()
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [" ".join(m) for m in json.loads(tk.to_str())["model"]["merges"]]
    types = [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens]
    path = OUT / name
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|begin_of_text|>"])
    w.add_eos_token_id(vocab["<|end_of_text|>"])
    w.add_add_bos_token(True)
    write(w)
    tok = AutoTokenizer.from_pretrained(str(OUT), gguf_file=path.name)
    items = hf_refs(tok, TEXTS)
    for it in items:
        enc = tk.encode(it["text"], add_special_tokens=False)
        it["tokenizers_ids"] = enc.ids
        it["tokenizers_decoded"] = tk.decode(enc.ids, skip_special_tokens=False)
    return {"file": path.name, "pre": pre, "vocab_size": len(tokens), "items": items}


def write(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    fx = {
        "versions": versions("sentencepiece", "tokenizers", "transformers", "gguf"),
        "spm": make_spm(),
        "llama3": make_bpe("llama3.gguf", "llama-bpe", LLAMA3_SPLIT),
        "qwen2": make_bpe("qwen2.gguf", "qwen2", QWEN2_SPLIT),
    }
    (OUT / "gguf_tokenizers.json").write_text(json.dumps(fx, ensure_ascii=False, indent=1) + "\n")
    for k in ("spm", "llama3", "qwen2"):
        items = fx[k]["items"]
        other = "sp_ids" if k == "spm" else "tokenizers_ids"
        diff = [it["text"] for it in items if it["hf_ids"] != it[other]]
        print(f"{k}: vocab {fx[k]['vocab_size']}, transformers != {other} for {diff}")


if __name__ == "__main__":
    main()
