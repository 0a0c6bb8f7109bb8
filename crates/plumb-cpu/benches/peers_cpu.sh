#!/usr/bin/env bash
# Plumb's CPU ops and the op-level peers (numpy, PyTorch, ONNX Runtime, Candle default and tuned)
# measured in one run, printed as one table (../shared/peers/table.py).
#
#   crates/plumb-cpu/benches/peers_cpu.sh            # from the repository root
#   ROUNDS=3 crates/plumb-cpu/benches/peers_cpu.sh   # alternate 3 times; per-round ratios
#
# Needs ../shared/peers/setup.sh to have run (venv /tmp/peers-venv). Candle columns appear when its
# binaries exist under /tmp/peers-build/{candle,candle-tuned} (built by ../shared/peers/run_all.sh
# or by hand, see there). Every row: 2 threads, median of 7 samples of ≥ 0.2 s.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/../shared/peers}"
PY="${PEERS_VENV:-/tmp/peers-venv}/bin/python"
BUILD="${PEERS_BUILD:-/tmp/peers-build}"
OUT="${PLUMB_PEERS_OUT:-/tmp/plumb-cpu-peers}"
mkdir -p "$OUT"
RES="$OUT/results.txt"; : > "$RES"
export PEERS_THREADS=2 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 RAYON_NUM_THREADS=2
export PLUMB_NUM_THREADS=2
REUSE=(env PEERS_OPS=eltwise PEERS_OP_SUFFIX=+reuse MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296)

(cd "$ROOT" && cargo build --release -q -p plumb-cpu --example bench_ops) || exit 1
PLUMB="$ROOT/target/release/examples/bench_ops"

ROUND="${ROUND:-}"
run() {
  local label="$1"; shift; echo "[peers_cpu] $label $ROUND" >&2
  "$@" 2> "$OUT/$label.log" | sed "s/^RESULT .*/& ${ROUND:+round=$ROUND}/" | tee -a "$RES" >&2
}

one_round() {
  run plumb "$PLUMB"
  if [ -x "$PY" ]; then
    for fw in numpy torch ort; do
      run "py-$fw" env PEERS_FRAMEWORKS="$fw" "$PY" "$PEERS/matmul_py.py"
    done
  fi
  for v in candle candle-tuned; do
    bin="$BUILD/$v/release/candle-bench"
    [ -x "$bin" ] && run "$v" env PEERS_FRAMEWORK_NAME="$v" "$bin"
  done
  # softmax / layer norm again with glibc reusing the 64 MiB outputs (no fresh page faults per
  # call)
  run plumb-reuse "${REUSE[@]}" "$PLUMB" lastdim
  if [ -x "$PY" ]; then
    for fw in torch ort; do
      run "py-$fw-reuse" "${REUSE[@]}" PEERS_FRAMEWORKS="$fw" "$PY" "$PEERS/matmul_py.py"
    done
  fi
}

echo "[peers_cpu] load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -n "${ROUNDS:-}" ]; then
  # ROUNDS=N: Plumb and every peer alternate N times (this machine's speed drifts by tens of
  # percent between minutes); the summary gives each row's Plumb ÷ best peer per round
  for i in $(seq 1 "$ROUNDS"); do ROUND=$i; one_round; done
  echo "[peers_cpu] load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  exec python3 "$ROOT/scripts/rounds_summary.py" "$RES"
fi
one_round
echo "[peers_cpu] load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -x "$PY" ]; then "$PY" "$PEERS/table.py" "$RES"; else cat "$RES"; fi
