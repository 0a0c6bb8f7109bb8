#!/usr/bin/env bash
# Plumb's CPU model benchmarks alternating with the peers, ROUNDS times (default 3): MiniLM
# (sentence-transformers, ONNX Runtime, Candle where built, then Plumb; batch 32, then the same at
# batch 1 through scripts/peers_minilm_batch.py) and SmolLM2 Q4_1 (llama.cpp and transformers in f32, then
# Plumb prefill + decode). On a noisy shared machine alternating rounds show the spread that
# one back-to-back run hides. Needs ../shared/peers/setup.sh (venv at $PEERS_VENV or
# /tmp/peers-venv, with llama-cpp-python), scripts/fetch_models.sh and the sentence/prompt files
# that BENCHMARKS.md's "Models" section writes to /tmp. Candle's MiniLM (batch 32) runs where
# ../shared/peers/run_all.sh (or its build line) left candle-minilm under $PEERS_BUILD or
# /tmp/peers-build/{candle,candle-tuned}.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/../shared/peers}"
PY="${PEERS_VENV:-/tmp/peers-venv}/bin/python"
MODELS="${PLUMB_MODELS:-$ROOT/target/models}"
BENCH="$ROOT/target/release/examples/model_bench"
BUILD="${PEERS_BUILD:-/tmp/peers-build}"
(cd "$ROOT" && cargo build --release -q -p plumb-nn --example model_bench)
pick() { grep RESULT | grep -o "framework=[a-z.-]*\|op=[a-z_]*\|shape=[0-9x]*\|value=[0-9.]*" | tr '\n' ' '; echo; }
plumb() { (cd "$ROOT" && PLUMB_NUM_THREADS=2 PLUMB_BENCH_ONLY="$1" "$BENCH" /tmp/bench_sentences.txt /tmp/bench_prompt.txt 2>&1 | pick); }
for i in $(seq 1 "${ROUNDS:-3}"); do
  echo "== round $i $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
  (cd "$PEERS" && PEERS_THREADS=2 "$PY" minilm_py.py "$MODELS/all-MiniLM-L6-v2" 2>&1 | pick)
  for v in candle candle-tuned; do
    bin="$BUILD/$v/release/candle-minilm"
    if [ -x "$bin" ]; then
      PEERS_FRAMEWORK_NAME="$v" RAYON_NUM_THREADS=2 "$bin" "$MODELS/all-MiniLM-L6-v2" \
        /tmp/bench_sentences.txt 2>&1 | pick
    fi
  done
  plumb embed32
  (cd "$PEERS" && PEERS_THREADS=2 PEERS_MINILM_BATCH=1 PEERS_DIR="$PEERS" \
    "$PY" "$ROOT/scripts/peers_minilm_batch.py" "$MODELS/all-MiniLM-L6-v2" 2>&1 | pick)
  plumb embed1
  (cd "$PEERS" && PEERS_THREADS=2 PEERS_FRAMEWORKS="${PEERS_LLM_FRAMEWORKS:-llama.cpp,transformers}" \
    PEERS_LLM_GGUF="$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$PY" llm_py.py 2>&1 | pick)
  plumb llm-q4_1
done
echo "== end $(date -u +%H:%M:%S)"
