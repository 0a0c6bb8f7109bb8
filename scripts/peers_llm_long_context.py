#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) decoding after a long prompt and after a short one: the prompt
"The quick brown fox jumps over the lazy dog." 160 times (1600 tokens with SmolLM2's
tokenizer), then "The quick brown fox"; 128 greedy tokens after each, 2 threads. Prints the
prompt and decode rates as `plumb generate` prints its own, for the same two prompts:

    python scripts/peers_llm_long_context.py MODEL.gguf          (the peers' venv)
    p=$(yes "The quick brown fox jumps over the lazy dog." | head -160 | tr '\\n' ' ')
    PLUMB_NUM_THREADS=2 target/release/plumb generate MODEL.gguf --prompt "$p" --max-tokens 128
    PLUMB_NUM_THREADS=2 target/release/plumb generate MODEL.gguf --prompt "$p" --max-tokens 128 \
        --kv-dtype f16                 (the cache in f16, as llama.cpp keeps it by default)

Decode rate: tokens after the first, over the time from the first to the last.
"""
import sys
import time

from llama_cpp import Llama


def main():
    m = Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
    long = ("The quick brown fox jumps over the lazy dog. " * 160).strip()
    for prompt in [long, "The quick brown fox"]:
        toks = m.tokenize(prompt.encode(), add_bos=False)
        m.reset()
        t0 = time.perf_counter()
        m.eval(toks)
        t1 = time.perf_counter()
        n, first = 0, None
        for _ in m.generate([], top_k=1, temp=0.0, reset=False):
            n += 1
            if first is None:
                first = time.perf_counter()
            if n >= 128:
                break
        t2 = time.perf_counter()
        print(
            f"llama.cpp: {len(toks)} prompt tokens at {len(toks) / (t1 - t0):.1f} tokens/s, "
            f"{n} generated at {(n - 1) / (t2 - first):.1f} tokens/s"
        )


if __name__ == "__main__":
    main()
