#!/usr/bin/env python3
"""Reference outputs for plumb-nn's RoPE scaling tests (tests/llama_rope.rs), from transformers.

Builds a tiny random LlamaForCausalLM (hidden 64, 4 heads, 2 kv heads, head_dim 16, 2 layers,
vocab 96, tied embeddings, rope_theta 10000, fixed seed) with Llama 3.1's RoPE scaling but a tiny
original context (llama3, factor 8, low_freq_factor 1, high_freq_factor 4,
original_max_position_embeddings 32), so the scaling changes 7 of the 8 frequencies. Weights are
drawn with initializer_range 0.1 so that attention, and hence RoPE, visibly moves the logits; the
script checks that the logits with and without scaling differ by far more than the tests'
tolerance. Writes under crates/plumb-nn/tests/fixtures/:

- llama_rope/model.safetensors   save_pretrained(safe_serialization=True), float32
- llama_rope/config.json         as transformers 5 saves it (`rope_parameters`, rope_theta inside)
- llama_rope/config_hub.json     the same model written as Llama 3.1 checkpoints on the hub are
                                 (`rope_scaling` with `rope_type`, top-level `rope_theta`)
- llama_rope/config_linear.json  the same weights with legacy `rope_scaling: {type: linear,
                                 factor: 4}`
- llama_rope/config_yarn.json    the same weights with YaRN (factor 4, original context 32:
                                 frequency 0 kept, 1 blended, 2..7 divided; cos/sin × mscale)
- llama_rope/config_yarn_mscale.json  YaRN with DeepSeek's mscale / mscale_all_dim, beta_fast 16
                                 and truncate false (the other branches of transformers' code)
- llama_rope/config_dynamic.json dynamic NTK, factor 2, with max_position_embeddings 16 so that
                                 the 40 positions run past it
- llama_rope.gguf                the same weights as llama.cpp lays them out (GGUF names, Q/K rows
                                 permuted for interleaved RoPE, float32) with the llama3 scaling
                                 as a `rope_freqs.weight` tensor of per-frequency divisors
                                 (transformers' default inverse frequencies over its llama3 ones),
                                 plus llama.rope.scaling.original_context_length 32 and a stand-in
                                 byte-level BPE vocabulary (t0..t95, no merges)
- llama_rope_yarn.gguf           the GGUF weights with rope.scaling.type yarn, factor 4,
                                 original_context_length 32 (no rope_freqs.weight)
- rope_yarn.gguf                 metadata only: yarn with DeepSeek's yarn_log_multiplier (refused)
- rope_linear.gguf               metadata only: rope.scaling.type linear, factor 4
- rope_partial.gguf              metadata only: rope.dimension_count 8 for 16-wide heads
- llama_rope.json                the 40 token ids and the float32 logits of every position
                                 (transformers, CPU, eager attention) for llama3, linear, yarn,
                                 yarn_mscale and dynamic (one forward of all 40), and
                                 dynamic_steps: a freshly loaded model's last-position logits after
                                 a prefill of 25, then after each of 15 single-token steps with its
                                 KV cache (dynamic NTK recomputes the frequencies as the sequence
                                 grows, so these differ from the one-forward logits)

Rerun:  /tmp/peers-venv/bin/python scripts/make_rope_fixtures.py
        (any venv with torch and transformers >= 5; numpy)
"""
import json
import shutil
import struct
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "plumb-nn" / "tests" / "fixtures"
DIR = OUT / "llama_rope"
SEED = 1234
N_TOKENS = 40
LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}
LINEAR = {"type": "linear", "factor": 4.0}
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}
DYNAMIC = {"rope_type": "dynamic", "factor": 2.0}
PREFILL = 25
YARN_MSCALE = YARN | {"mscale": 0.707, "mscale_all_dim": 1.0, "beta_fast": 16.0, "truncate": False}
SHAPE = dict(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=256,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    initializer_range=0.1,
)
THETA = 10000.0
# the Rust tests compare at 1e-4; scaling must move the logits far more than that
MIN_SENSITIVITY = 1e-2


def config(scaling):
    return LlamaConfig(**SHAPE, rope_theta=THETA, rope_scaling=dict(scaling) if scaling else None)


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def with_config(state, cfg):
    m = LlamaForCausalLM(cfg).eval()
    m.load_state_dict(state)
    m.config._attn_implementation = "eager"
    return m


# --- GGUF writing (v3, just what these fixtures need) ---
U32, I32, F32, STR, ARR, U64 = 4, 5, 6, 8, 9, 10


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_write(path, meta, tensors):
    """meta: [(key, type, value)]; tensors: [(name, float32 numpy array)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for k, t, v in meta:
        out += gguf_str(k) + struct.pack("<I", t)
        out += {
            U32: lambda: struct.pack("<I", v),
            I32: lambda: struct.pack("<i", v),
            F32: lambda: struct.pack("<f", v),
            U64: lambda: struct.pack("<Q", v),
            STR: lambda: gguf_str(v),
            ARR: lambda: struct.pack("<IQ", STR, len(v)) + b"".join(gguf_str(x) for x in v),
        }[t]()
    data, offsets = b"", []
    for _, a in tensors:
        offsets.append(len(data))
        data += np.ascontiguousarray(a, dtype="<f4").tobytes()
        data += b"\0" * (-len(data) % 32)
    for (name, a), off in zip(tensors, offsets):
        out += gguf_str(name) + struct.pack("<I", a.ndim)
        out += b"".join(struct.pack("<Q", d) for d in reversed(a.shape))  # ggml order
        out += struct.pack("<IQ", 0, off)  # GGML_TYPE_F32
    out += b"\0" * (-len(out) % 32)
    path.write_bytes(out + data)


def gguf_meta(extra):
    c = SHAPE
    return [
        ("general.architecture", STR, "llama"),
        ("llama.vocab_size", U32, c["vocab_size"]),
        ("llama.context_length", U32, c["max_position_embeddings"]),
        ("llama.embedding_length", U32, c["hidden_size"]),
        ("llama.feed_forward_length", U32, c["intermediate_size"]),
        ("llama.block_count", U32, c["num_hidden_layers"]),
        ("llama.attention.head_count", U32, c["num_attention_heads"]),
        ("llama.attention.head_count_kv", U32, c["num_key_value_heads"]),
        ("llama.attention.layer_norm_rms_epsilon", F32, c["rms_norm_eps"]),
        ("llama.rope.freq_base", F32, THETA),
        ("llama.rope.dimension_count", U32, c["head_dim"]),
        # a stand-in tokenizer (distinct tokens, no merges) so `plumb convert` can write its side files
        ("tokenizer.ggml.model", STR, "gpt2"),
        ("tokenizer.ggml.tokens", ARR, [f"t{i}" for i in range(c["vocab_size"])]),
        ("tokenizer.ggml.merges", ARR, []),
    ] + extra


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permute: rotate-half rows → interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(state, cfg, rope_freqs=True):
    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    out = [
        ("token_embd.weight", state["model.embed_tokens.weight"].numpy()),
        ("output_norm.weight", state["model.norm.weight"].numpy()),
    ]
    for i in range(cfg.num_hidden_layers):
        for hf, gg in names.items():
            w = state[f"model.layers.{i}.{hf}.weight"].numpy()
            if gg == "attn_q":
                w = permute(w, cfg.num_attention_heads)
            elif gg == "attn_k":
                w = permute(w, cfg.num_key_value_heads)
            out.append((f"blk.{i}.{gg}.weight", w))
    if not rope_freqs:
        return out
    # per-frequency divisors: default inverse frequencies over transformers' llama3 ones
    plain = 1.0 / (THETA ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    out.append(("rope_freqs.weight", (plain / scaled.double()).float().numpy()))
    return out


def main():
    torch.manual_seed(SEED)
    cfg = config(LLAMA3)
    model = LlamaForCausalLM(cfg).eval()
    model.config._attn_implementation = "eager"
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if DIR.exists():
        shutil.rmtree(DIR)
    model.save_pretrained(DIR, safe_serialization=True)
    (DIR / "generation_config.json").unlink(missing_ok=True)
    saved = json.loads((DIR / "config.json").read_text())
    assert saved["rope_parameters"]["rope_type"] == "llama3", saved

    hub = {k: v for k, v in saved.items() if k not in ("rope_parameters", "dtype")}
    hub |= {"rope_theta": THETA, "rope_scaling": LLAMA3, "torch_dtype": "float32"}
    (DIR / "config_hub.json").write_text(json.dumps(hub, indent=2) + "\n")
    linear = hub | {"rope_scaling": LINEAR}
    (DIR / "config_linear.json").write_text(json.dumps(linear, indent=2) + "\n")
    for name, scaling in [("yarn", YARN), ("yarn_mscale", YARN_MSCALE)]:
        text = json.dumps(hub | {"rope_scaling": scaling}, indent=2) + "\n"
        (DIR / f"config_{name}.json").write_text(text)
    dynamic = hub | {"rope_scaling": DYNAMIC, "max_position_embeddings": 16}
    (DIR / "config_dynamic.json").write_text(json.dumps(dynamic, indent=2) + "\n")

    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, SHAPE["vocab_size"], (N_TOKENS,), generator=g).tolist()
    # the reference: each model as transformers loads it from the files written
    ref = {}
    for name, file in [
        ("llama3", "config.json"),
        ("llama3_hub", "config_hub.json"),
        ("linear", "config_linear.json"),
        ("yarn", "config_yarn.json"),
        ("yarn_mscale", "config_yarn_mscale.json"),
        ("dynamic", "config_dynamic.json"),
    ]:
        c = LlamaConfig.from_json_file(DIR / file)
        ref[name] = logits(with_config(state, c), ids)
    # dynamic NTK step by step, on a model that has not seen the longer forward above
    m = with_config(state, LlamaConfig.from_json_file(DIR / "config_dynamic.json"))
    steps = []
    with torch.no_grad():
        out = m(torch.tensor([ids[:PREFILL]]), use_cache=True)
        steps.append(out.logits[0, -1].float().numpy())
        for p in range(PREFILL, N_TOKENS):
            out = m(torch.tensor([[ids[p]]]), past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits[0, -1].float().numpy())
    ref["dynamic_steps"] = np.stack(steps)
    assert np.abs(ref["llama3"] - ref["llama3_hub"]).max() == 0.0
    plain = logits(with_config(state, config(None)), ids)
    sens = {
        "llama3_vs_none": float(np.abs(ref["llama3"] - plain).max()),
        "linear_vs_none": float(np.abs(ref["linear"] - plain).max()),
        "llama3_vs_linear": float(np.abs(ref["llama3"] - ref["linear"]).max()),
        "yarn_vs_none": float(np.abs(ref["yarn"] - plain).max()),
        "yarn_vs_linear": float(np.abs(ref["yarn"] - ref["linear"]).max()),
        "yarn_mscale_vs_yarn": float(np.abs(ref["yarn_mscale"] - ref["yarn"]).max()),
        "dynamic_vs_none": float(np.abs(ref["dynamic"] - plain).max()),
        "dynamic_steps_vs_one_forward": float(np.abs(ref["dynamic_steps"] - ref["dynamic"][PREFILL - 1 :]).max()),
    }
    assert min(sens.values()) > MIN_SENSITIVITY, sens

    gguf_write(
        OUT / "llama_rope.gguf",
        gguf_meta([("llama.rope.scaling.original_context_length", U32, 32)]),
        gguf_tensors(state, cfg),
    )
    yarn_meta = [
        ("llama.rope.scaling.type", STR, "yarn"),
        ("llama.rope.scaling.factor", F32, 4.0),
        ("llama.rope.scaling.original_context_length", U32, 32),
    ]
    gguf_write(OUT / "llama_rope_yarn.gguf", gguf_meta(yarn_meta), gguf_tensors(state, cfg, rope_freqs=False))
    gguf_write(
        OUT / "rope_yarn.gguf",
        gguf_meta(yarn_meta + [("llama.rope.scaling.yarn_log_multiplier", F32, 0.1)]),
        [],
    )
    gguf_write(
        OUT / "rope_linear.gguf",
        gguf_meta([("llama.rope.scaling.type", STR, "linear"), ("llama.rope.scaling.factor", F32, 4.0)]),
        [],
    )

    partial = [m for m in gguf_meta([]) if m[0] != "llama.rope.dimension_count"]
    gguf_write(OUT / "rope_partial.gguf", partial + [("llama.rope.dimension_count", U32, 8)], [])

    fx = {
        "generator": "scripts/make_rope_fixtures.py",
        "versions": {p: version(p) for p in ("torch", "transformers")} | {"python": sys.version.split()[0]},
        "seed": SEED,
        "ids": ids,
        "max_abs_logit_change": sens,
        "logits": {
            k: [[float(f"{x:.7g}") for x in row] for row in ref[k]]
            for k in ("llama3", "linear", "yarn", "yarn_mscale", "dynamic", "dynamic_steps")
        },
    }
    (OUT / "llama_rope.json").write_text(json.dumps(fx) + "\n")
    files = sorted(p for p in [*DIR.iterdir(), *OUT.glob("*rope*.*")] if p.is_file())
    for p in files:
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")
    print("total", sum(p.stat().st_size for p in files), "bytes; sensitivity", sens)


if __name__ == "__main__":
    main()
