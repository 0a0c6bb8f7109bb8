#!/usr/bin/env python3
"""The shared MiniLM peer benchmark (../shared/peers/minilm_py.py: sentence-transformers and ONNX
Runtime, same 256 sentences, length-sorted batches) at another batch size than its fixed 32.

usage: PEERS_MINILM_BATCH=1 python scripts/peers_minilm_batch.py MODEL_DIR
(run with the peers' venv; PEERS_DIR points at ../shared/peers when it is elsewhere)
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("PEERS_DIR", os.path.join(ROOT, "..", "shared", "peers")))

import minilm_py  # noqa: E402  (after the path; it sets the thread variables itself)

# the harness reads BATCH when it runs, so both sentence-transformers and ONNX Runtime get it
minilm_py.BATCH = int(os.environ.get("PEERS_MINILM_BATCH", "1"))
minilm_py.main()
