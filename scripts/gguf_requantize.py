#!/usr/bin/env python3
"""Write a float copy of a GGUF model with llama.cpp's own requantizer, for benchmarks that need
llama.cpp running the same float weights as Plumb.

    scripts/gguf_requantize.py IN.gguf OUT.gguf f16|bf16|f32

Runs `llama_model_quantize` from llama-cpp-python (the peers venv of ../shared/peers/setup.sh)
with `allow_requantize`: every quantized tensor of IN is dequantized and stored in the target
type, so OUT holds exactly the values Plumb computes with when it loads IN with `--dtype` f16 /
bf16 / f32 (SmolLM2's Q4_1 weights and Q8_0 embeddings, widened). Writes OUT through a temporary
file in the same folder and renames it, so a failed run leaves no partial OUT.
"""
import os
import sys


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[3] not in ("f16", "bf16", "f32"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst, dtype = sys.argv[1:]
    if not os.path.isfile(src):
        print(f"gguf_requantize: {src}: no such file", file=sys.stderr)
        return 1
    import llama_cpp

    ftype = {
        "f32": llama_cpp.LLAMA_FTYPE_ALL_F32,
        "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
        "bf16": llama_cpp.LLAMA_FTYPE_MOSTLY_BF16,
    }[dtype]
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = int(os.environ.get("PEERS_THREADS", "2"))
    tmp = f"{dst}.tmp-{os.getpid()}"
    try:
        rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), params)
        if rc != 0:
            print(f"gguf_requantize: llama_model_quantize({src}) returned {rc}", file=sys.stderr)
            return 1
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"wrote {dst} ({os.path.getsize(dst) / 1e6:.1f} MB, {dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
