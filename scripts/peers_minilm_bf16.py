#!/usr/bin/env python3
"""MiniLM in bfloat16 on the CPU: sentence-transformers with the model cast to torch.bfloat16
(PyTorch's oneDNN kernels use AVX512-BF16 where the CPU has it), on the shared harness's 256
sentences in length-sorted batches of PEERS_MINILM_BATCH (default 32), timed as
../shared/peers/minilm_py.py times f32 (median of its runs after a warm-up). Prints a RESULT
line and the smallest cosine of its embeddings to the f32 model's, and saves the f32
embeddings of all 256 sentences to $PEERS_OUT/minilm_f32_all.npy.

    PEERS_THREADS=2 python scripts/peers_minilm_bf16.py MODEL_DIR
    python scripts/peers_minilm_bf16.py --cosine EMBED.json
        smallest cosine of `plumb embed --json` output (the same sentences, in order) to the
        saved f32 embeddings

(run with the peers' venv; PEERS_DIR points at ../shared/peers when it is elsewhere)
"""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("PEERS_DIR", os.path.join(ROOT, "..", "shared", "peers")))

import minilm_py  # noqa: E402  (after the path; it sets the thread variables itself)
from peers_common import emit, note  # noqa: E402

import numpy as np  # noqa: E402

REF = os.path.join(minilm_py.OUT, "minilm_f32_all.npy")


def min_cosine(a, b):
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--cosine":
        got = np.array(json.load(open(sys.argv[2]))["embeddings"], np.float32)
        ref = np.load(REF)
        if got.shape != ref.shape:
            sys.exit(f"{sys.argv[2]}: {got.shape} embeddings, the f32 reference holds {ref.shape}")
        print(f"min_cosine_to_f32={min_cosine(got, ref):.6f} max_abs_diff={np.abs(got - ref).max():.2e}")
        return
    model_dir = minilm_py.find_model(sys.argv[1] if len(sys.argv) > 1 else None)
    if not model_dir:
        sys.exit("no all-MiniLM-L6-v2 folder given or found")
    batch = int(os.environ.get("PEERS_MINILM_BATCH", "32"))
    sentences = minilm_py.make_sentences()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(minilm_py.THREADS)
    st = SentenceTransformer(model_dir, device="cpu")
    st.max_seq_length = minilm_py.MAX_LEN

    def encode():
        with torch.inference_mode():
            out = st.encode(sentences, batch_size=batch, convert_to_numpy=False, show_progress_bar=False)
        return np.stack([t.float().numpy() for t in out])

    ref = encode()
    os.makedirs(minilm_py.OUT, exist_ok=True)
    np.save(REF, ref)
    st.to(torch.bfloat16)
    got = encode()  # warm-up
    times = []
    for _ in range(minilm_py.RUNS):
        t = time.perf_counter()
        encode()
        times.append(time.perf_counter() - t)
    med = float(np.median(times))
    n = len(sentences)
    emit("sentence-transformers", "minilm_embed", "bf16", f"{n}x{batch}", med, n / med, "sent/s",
         runs=minilm_py.RUNS, threads=torch.get_num_threads())
    note(f"sentence-transformers bf16 vs f32: min cosine {min_cosine(got, ref):.6f}")


if __name__ == "__main__":
    main()
