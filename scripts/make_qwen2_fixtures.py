#!/usr/bin/env python3
"""Reference outputs for plumb-nn's Qwen2 and attention-bias tests (tests/qwen2.rs), from
transformers, with the GGUF files written by llama.cpp's own Python package (gguf-py).

Builds a tiny random Qwen2ForCausalLM (hidden 64, 4 heads, 2 kv heads, head_dim 16, 2 layers,
vocab 97, tied embeddings, rope_theta 1e6, RMSNorm eps 1e-6, fixed seed) whose q/k/v biases are
drawn from N(0, BIAS_STD) (transformers initialises them to zero), and a tiny LlamaForCausalLM with
`attention_bias: true` (biases on q, k, v and o). The script checks that the logits move far more
than the tests' tolerance when the biases are zeroed, and when the Qwen2 GGUF is read with the
wrong RoPE layout (interleaved pairs instead of rotate-half). Writes under
crates/plumb-nn/tests/fixtures/:

- qwen2/model.safetensors   save_pretrained(safe_serialization=True), bfloat16 (as Qwen2.5
                            checkpoints are; the references compute in float32 on those values)
- qwen2/config.json         as transformers 5 saves it (`rope_parameters`, `layer_types`,
                            `use_sliding_window: false`, `sliding_window: null`)
- qwen2/config_hub.json     the same model written as Qwen2.5 checkpoints on the hub are
                            (top-level `rope_theta`, `use_sliding_window: false` with a
                            `sliding_window` of 32, shorter than the context, which transformers
                            then ignores; `max_window_layers` 1)
- qwen2/tokenizer.json      a stand-in byte-level BPE vocabulary: the 95 printable ASCII bytes
                            (ids 0..94, in GPT-2's byte-to-unicode spelling), one merge ("Ġ t",
                            id 95) and <|endoftext|> (id 96, the end of text), so that any ASCII
                            prompt encodes and `plumb generate` runs on the folder
- qwen2_f32.gguf            the same weights as llama.cpp's convert_hf_to_gguf.py writes a
                            Qwen2ForCausalLM (architecture qwen2, tensor names from gguf-py's
                            name map, Q/K rows NOT permuted: llama.cpp runs qwen2 with NEOX,
                            rotate-half RoPE), float32, with the same vocabulary (pre qwen2)
- qwen2_q8_0.gguf           the same with every matrix quantized to Q8_0 by gguf-py (1-D tensors,
                            biases included, stay float32, as llama.cpp leaves them)
- llama_bias/model.safetensors, llama_bias/config.json
                            a LlamaForCausalLM (hidden 32, 2 heads, 1 kv head, 1 layer) with
                            attention_bias true
- llama_bias.gguf           the same as llama.cpp writes a Llama: Q/K weight rows and Q/K bias
                            entries permuted for its interleaved RoPE (LlamaModel.permute),
                            attn_output.bias kept
- qwen2.json                token ids, a text and its ids from the `tokenizers` library, and the
                            float32 logits of every position (transformers,
                            CPU, eager attention) for: qwen2 (the float model), qwen2_q8_0 (the
                            model with the Q8_0 file's dequantized matrices) and llama_bias; the
                            sensitivities measured above

Rerun:  /tmp/peers-venv/bin/python scripts/make_qwen2_fixtures.py
        (any venv with torch, transformers >= 5, numpy and gguf, llama.cpp's gguf-py)
"""
import json
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf.quants import dequantize, quantize
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "plumb-nn" / "tests" / "fixtures"
QWEN_DIR = OUT / "qwen2"
LLAMA_DIR = OUT / "llama_bias"
SEED = 2024
N_TOKENS = 24
THETA = 1e6
BIAS_STD = 0.5
QWEN = dict(
    vocab_size=97,
    hidden_size=64,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    initializer_range=0.1,
    use_sliding_window=False,
    bos_token_id=None,
    eos_token_id=96,
)
LLAMA = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=16,
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    initializer_range=0.1,
    attention_bias=True,
    rope_theta=10000.0,
    bos_token_id=None,
    eos_token_id=96,
)
# the Rust tests compare at 1e-4; what they check must move the logits far more than that
MIN_SENSITIVITY = 5e-2


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def eager(model):
    model.eval()
    model.config._attn_implementation = "eager"
    return model


def with_state(cls, cfg, state):
    m = cls(cfg)
    m.load_state_dict(state)
    return eager(m)


def draw_biases(model, gen):
    """Non-zero biases on every projection that has one (transformers zero-initialises them)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_proj.bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * BIAS_STD)


def zero_biases(state):
    return {k: (torch.zeros_like(v) if k.endswith("_proj.bias") else v) for k, v in state.items()}


def permute(w, n_head):
    """llama.cpp's LlamaModel.permute: rotate-half rows → interleaved pairs (weights and biases)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --- the stand-in vocabulary ---
def byte_level_chars():
    """GPT-2's bytes_to_unicode, restricted to the printable ASCII bytes 0x20..0x7e."""
    return ["\u0120" if b == 0x20 else chr(b) for b in range(0x20, 0x7F)]


EOT = "<|endoftext|>"
# one merge: a byte-level BPE vocabulary needs some (llama.cpp refuses a file without the key,
# and gguf-py cannot write an empty array)
MERGES = ["\u0120 t"]
TEXT = "Hi there, it's Plumb!"


def vocabulary():
    toks = byte_level_chars() + ["\u0120t", EOT]
    assert len(toks) == QWEN["vocab_size"]
    return toks


def write_tokenizer_json(path):
    """Returns the ids of TEXT, the reference for the tokenizers Plumb builds."""
    toks = vocabulary()
    merges = [tuple(m.split(" ")) for m in MERGES]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(toks)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    tok.save(str(path))
    ids = tok.encode(TEXT).ids
    assert toks.index("\u0120t") in ids and tok.decode(ids) == TEXT, ids
    return ids


# --- GGUF ---
def add_vocab(w):
    toks = vocabulary()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(toks)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(toks) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(MERGES)
    w.add_eos_token_id(len(toks) - 1)


def write_gguf(path, arch, cfg, state, qtype, permute_qk):
    """The tensors as convert_hf_to_gguf.py names and lays them out, through gguf-py's writer."""
    c = cfg.to_dict()
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    w = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_vocab_size(c["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if qtype else gguf.LlamaFileType.ALL_F32)
    add_vocab(w)
    names = gguf.get_tensor_name_map(arch, c["num_hidden_layers"])
    dequantized = {}
    for hf, t in state.items():
        if hf == "lm_head.weight":  # tied: llama.cpp writes no output.weight
            continue
        name = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf
        a = t.numpy().astype(np.float32)
        if permute_qk and hf.endswith(("q_proj.weight", "q_proj.bias")):
            a = permute(a, heads)
        if permute_qk and hf.endswith(("k_proj.weight", "k_proj.bias")):
            a = permute(a, kv)
        if qtype is not None and a.ndim == 2:
            q = quantize(a, qtype)
            w.add_tensor(name, q, raw_dtype=qtype)
            dequantized[hf] = torch.from_numpy(dequantize(q, qtype).reshape(a.shape).copy())
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dequantized


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)

    # --- Qwen2 ---
    qcfg = Qwen2Config(**QWEN, rope_parameters={"rope_type": "default", "rope_theta": THETA})
    qwen = eager(Qwen2ForCausalLM(qcfg))
    draw_biases(qwen, gen)
    # stored in bfloat16, as Qwen2.5 checkpoints are; the reference computes in float32 on the
    # rounded values
    qwen = qwen.to(torch.bfloat16)
    if QWEN_DIR.exists():
        shutil.rmtree(QWEN_DIR)
    qwen.save_pretrained(QWEN_DIR, safe_serialization=True)
    qstate = {k: v.detach().float().clone() for k, v in qwen.state_dict().items()}
    (QWEN_DIR / "generation_config.json").unlink(missing_ok=True)
    saved = json.loads((QWEN_DIR / "config.json").read_text())
    assert saved["model_type"] == "qwen2" and saved["use_sliding_window"] is False, saved
    assert saved["dtype"] == "bfloat16", saved
    hub = {k: v for k, v in saved.items() if k not in ("rope_parameters", "dtype", "layer_types")}
    hub |= {
        "architectures": ["Qwen2ForCausalLM"],
        "rope_theta": THETA,
        "sliding_window": 32,
        "max_window_layers": 1,
        "torch_dtype": "bfloat16",
    }
    (QWEN_DIR / "config_hub.json").write_text(json.dumps(hub, indent=2) + "\n")
    text_ids = write_tokenizer_json(QWEN_DIR / "tokenizer.json")

    ids = torch.randint(0, QWEN["vocab_size"], (N_TOKENS,), generator=gen).tolist()
    ref = {"qwen2": logits(with_state(Qwen2ForCausalLM, Qwen2Config.from_json_file(QWEN_DIR / "config.json"), qstate), ids)}
    hub_logits = logits(with_state(Qwen2ForCausalLM, Qwen2Config.from_json_file(QWEN_DIR / "config_hub.json"), qstate), ids)
    assert np.abs(ref["qwen2"] - hub_logits).max() == 0.0, "the hub-style config computes the same"

    write_gguf(OUT / "qwen2_f32.gguf", gguf.MODEL_ARCH.QWEN2, qcfg, qstate, None, permute_qk=False)
    deq = write_gguf(OUT / "qwen2_q8_0.gguf", gguf.MODEL_ARCH.QWEN2, qcfg, qstate, gguf.GGMLQuantizationType.Q8_0, permute_qk=False)
    q8_state = qstate | deq
    q8_state["lm_head.weight"] = q8_state["model.embed_tokens.weight"]
    ref["qwen2_q8_0"] = logits(with_state(Qwen2ForCausalLM, qcfg, q8_state), ids)

    # what Plumb would compute reading the qwen2 GGUF with llama's interleaved RoPE: the same as
    # transformers on Q/K rows (and biases) taken as if permuted
    wrong = dict(qstate)
    for k in qstate:
        if k.endswith(("q_proj.weight", "q_proj.bias")):
            wrong[k] = unpermute(qstate[k], QWEN["num_attention_heads"])
        if k.endswith(("k_proj.weight", "k_proj.bias")):
            wrong[k] = unpermute(qstate[k], QWEN["num_key_value_heads"])
    sens = {
        "qwen2_biases_zeroed": float(np.abs(ref["qwen2"] - logits(with_state(Qwen2ForCausalLM, qcfg, zero_biases(qstate)), ids)).max()),
        "qwen2_interleaved_rope": float(np.abs(ref["qwen2"] - logits(with_state(Qwen2ForCausalLM, qcfg, wrong), ids)).max()),
    }
    # the tests check that generation picks the argmax of the last position: no near tie there
    top = np.sort(ref["qwen2"][-1])[-2:]
    margin = float(top[1] - top[0])
    assert margin > 1e-2, f"the last position's logits have a near tie ({margin})"

    # --- Llama with attention_bias ---
    lcfg = LlamaConfig(**LLAMA)
    llama = eager(LlamaForCausalLM(lcfg))
    draw_biases(llama, gen)
    lstate = {k: v.detach().clone() for k, v in llama.state_dict().items()}
    assert "model.layers.0.self_attn.o_proj.bias" in lstate
    if LLAMA_DIR.exists():
        shutil.rmtree(LLAMA_DIR)
    llama.save_pretrained(LLAMA_DIR, safe_serialization=True)
    (LLAMA_DIR / "generation_config.json").unlink(missing_ok=True)
    ref["llama_bias"] = logits(with_state(LlamaForCausalLM, LlamaConfig.from_json_file(LLAMA_DIR / "config.json"), lstate), ids)
    write_gguf(OUT / "llama_bias.gguf", gguf.MODEL_ARCH.LLAMA, lcfg, lstate, None, permute_qk=True)
    no_o = dict(lstate)
    no_o["model.layers.0.self_attn.o_proj.bias"] = torch.zeros_like(lstate["model.layers.0.self_attn.o_proj.bias"])
    sens |= {
        "llama_biases_zeroed": float(np.abs(ref["llama_bias"] - logits(with_state(LlamaForCausalLM, lcfg, zero_biases(lstate)), ids)).max()),
        "llama_o_bias_zeroed": float(np.abs(ref["llama_bias"] - logits(with_state(LlamaForCausalLM, lcfg, no_o), ids)).max()),
    }
    assert min(sens.values()) > MIN_SENSITIVITY, sens
    # for information: what quantizing the matrices to Q8_0 changes
    sens["qwen2_q8_0_vs_f32"] = float(np.abs(ref["qwen2"] - ref["qwen2_q8_0"]).max())

    fx = {
        "generator": "scripts/make_qwen2_fixtures.py",
        "versions": {p: version(p) for p in ("torch", "transformers", "gguf")} | {"python": sys.version.split()[0]},
        "seed": SEED,
        "ids": ids,
        "tokenized": {"text": TEXT, "ids": text_ids},
        "max_abs_logit_change": sens,
        "logits": {k: [[float(f"{x:.7g}") for x in row] for row in v] for k, v in ref.items()},
    }
    (OUT / "qwen2.json").write_text(json.dumps(fx) + "\n")
    files = sorted(
        p
        for p in [*QWEN_DIR.iterdir(), *LLAMA_DIR.iterdir(), *(OUT / n for n in ("qwen2_f32.gguf", "qwen2_q8_0.gguf", "llama_bias.gguf", "qwen2.json"))]
        if p.is_file()
    )
    for p in files:
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")
    print("total", sum(p.stat().st_size for p in files), "bytes; sensitivity", sens, "last margin", margin)


if __name__ == "__main__":
    main()
