#!/usr/bin/env python3
"""A k-quant GGUF of SmolLM2-135M-Instruct (`Q4_K_M` unless told), made by llama.cpp's own quantizer (through
llama-cpp-python) from the Q4_1 file that scripts/fetch_models.sh downloads (the only GGUF of it
fetched here; requantizing from Q4_1 is what llama.cpp's `--allow-requantize` does). llama.cpp
falls back to Q5_0 / Q8_0 for the matrices whose rows (576) are not whole 256-value k-quant
blocks, so the file holds Q5_0, Q4_K, Q6_K and Q8_0 matrices, as the Q4_K_M files of small models
on the hub do. Used by BENCHMARKS.md ("GGUF k-quants and Q5_0") to run Plumb and llama.cpp on the
same file.

    /tmp/peers-venv/bin/python scripts/make_smollm2_kquant.py [TYPE [OUT]]
        TYPE: a llama.cpp file type such as Q4_K_M (default), Q3_K_M, Q2_K, Q5_K_M, Q6_K;
        OUT: default /tmp/smollm2-TYPE.gguf (TYPE lower-cased for Q4_K_M: /tmp/smollm2-q4_k_m.gguf)
"""
import ctypes
import os
import sys
from collections import Counter

import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
models = os.environ.get("PLUMB_MODELS", os.path.join(ROOT, "target", "models"))
src = os.path.join(models, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
ftype = sys.argv[1] if len(sys.argv) > 1 else "Q4_K_M"
default = "/tmp/smollm2-q4_k_m.gguf" if ftype == "Q4_K_M" else f"/tmp/smollm2-{ftype}.gguf"
out = sys.argv[2] if len(sys.argv) > 2 else default
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
p.allow_requantize = True
p.nthread = 2
rc = llama_cpp.llama_model_quantize(src.encode(), out.encode(), ctypes.byref(p))
if rc != 0:
    sys.exit(f"llama_model_quantize failed: {rc}")
try:
    import gguf

    types = Counter(t.tensor_type.name for t in gguf.GGUFReader(out).tensors)
    print(out, dict(types))
except ImportError:
    print(out)
