#!/usr/bin/env bash
# GPU benchmarks of BENCHMARKS.md ("CUDA (cuda:0) and wgpu (gpu:0) on an NVIDIA H100"), Plumb and
# PyTorch in one run. Needs: release builds of the `plumb` CLI and the `model_bench` and
# `op_overhead` examples in $BIN (default target/release and target/release/examples), PyTorch and
# transformers, ../shared/peers/gpu (or $PEERS), and the test models' configs and tokenizers
# (scripts/fetch_models.sh; random weights are written with them, so no checkpoint is needed).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release}
EX=${EX:-$BIN/examples}
PEERS=${PEERS:-../shared/peers/gpu}
MODELS=${PLUMB_MODELS:-target/models}
W=${WORK:-/tmp/plumb-gpu-bench}
# MINILM_SRC / SMOL_SRC: folders with the configs and tokenizers (no weights needed); by default
# made from the test models
MINILM_SRC=${MINILM_SRC:-$MODELS/all-MiniLM-L6-v2}
SMOL_SRC=${SMOL_SRC:-$W/smol-src}
mkdir -p "$W"
if [ ! -f "$SMOL_SRC/tokenizer.json" ]; then
  mkdir -p "$SMOL_SRC"
  "$BIN/plumb" convert "$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" --dtype f16 --out "$W/smol-conv"
  cp "$W/smol-conv"/{config.json,tokenizer.json,tokenizer_config.json} "$SMOL_SRC/"
fi
python3 scripts/gpu/make_random_models.py "$MINILM_SRC" "$W/minilm" "$SMOL_SRC" "$W/smol"
python3 -c "print('\n'.join([' '.join(['data']*30)]*256))" > "$W/s32.txt"
export PLUMB_BENCH_MINILM="$W/minilm" PLUMB_BENCH_LLM="$W/smol"
for d in ${DEVICES:-cuda:0 gpu:0}; do
  for dt in f32 f16; do
    PLUMB_BENCH_DEVICE=$d PLUMB_BENCH_DTYPE=$dt "$EX/model_bench" "$W/s32.txt" | grep RESULT
  done
  "$BIN/plumb" bench --device "$d" --sizes 1024,2048,4096 | grep RESULT
  "$EX/op_overhead" "$d"
done
python3 "$PEERS/torch_gpu_models.py" cuda
python3 "$PEERS/torch_gpu_matmul.py"
