#!/usr/bin/env bash
# SmolLM2 with float weights on the CPU, Plumb against llama.cpp on the same files, alternating,
# ROUNDS times (default 3): prefill 256 tokens and decode 128, 2 threads.
#
# The float GGUFs are SmolLM2's Q4_1 GGUF requantized by llama.cpp itself
# (scripts/gguf_requantize.py; written once to $FLOAT_GGUF_DIR, default /tmp), so both runtimes
# read the same values. Needs ../shared/peers/setup.sh (venv at $PEERS_VENV or /tmp/peers-venv,
# with llama-cpp-python), scripts/fetch_models.sh and /tmp/bench_prompt.txt (BENCHMARKS.md,
# "Models"). BENCH_OLD=path/to/an/older/model_bench adds that build's rows after each Plumb row.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/../shared/peers}"
PY="${PEERS_VENV:-/tmp/peers-venv}/bin/python"
MODELS="${PLUMB_MODELS:-$ROOT/target/models}"
DIR="${FLOAT_GGUF_DIR:-/tmp}"
Q41="$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
(cd "$ROOT" && cargo build --release -q -p plumb-nn --example model_bench)
for dt in f32 f16 bf16; do
  f="$DIR/SmolLM2-135M-Instruct.$dt.gguf"
  [ -f "$f" ] || "$PY" "$ROOT/scripts/gguf_requantize.py" "$Q41" "$f" "$dt"
done
pick() { grep RESULT | grep -o "op=[a-z_]*\|value=[0-9.]*" | tr '\n' ' '; echo; }
plumb() {
  PLUMB_MODELS="$MODELS" PLUMB_NUM_THREADS=2 PLUMB_BENCH_DTYPE="$2" PLUMB_BENCH_LLM="$3" \
    PLUMB_BENCH_ONLY="llm-$2" "$1" /dev/null /tmp/bench_prompt.txt 2>&1 | pick
}
for i in $(seq 1 "${ROUNDS:-3}"); do
  echo "== round $i $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
  for dt in f32 f16 bf16; do
    f="$DIR/SmolLM2-135M-Instruct.$dt.gguf"
    echo -n "$dt llama.cpp: "
    (cd "$PEERS" && PEERS_THREADS=2 PEERS_FRAMEWORKS=llama.cpp PEERS_LLM_GGUF="$f" "$PY" llm_py.py 2>&1 | pick)
    echo -n "$dt plumb: "
    plumb "$ROOT/target/release/examples/model_bench" "$dt" "$f"
    if [ -n "${BENCH_OLD:-}" ]; then
      echo -n "$dt plumb (BENCH_OLD): "
      plumb "$BENCH_OLD" "$dt" "$f"
    fi
  done
done
echo "== end $(date -u +%H:%M:%S)"
