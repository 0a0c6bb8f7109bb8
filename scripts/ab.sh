#!/usr/bin/env bash
# A/B of two environment settings on one benchmark command, alternating ROUNDS (default 8) times
# so that drift in a shared machine's speed hits both. Prints each pair and the medians of each
# side and of the per-pair ratios B/A. The command must print `value=NUMBER` (a RESULT line).
#
#   scripts/ab.sh "PLUMB_CPU_SGEMM=gemm" "" -- target/release/examples/model_bench ...
set -euo pipefail
A="$1"; B="$2"; shift 2; [ "${1:-}" = "--" ] && shift
val() { env $1 "${@:2}" 2>&1 | grep -o 'value=[0-9.]*' | head -1 | cut -d= -f2; }
ra=(); rb=(); rr=()
for i in $(seq 1 "${ROUNDS:-8}"); do
  a=$(val "$A" "$@"); b=$(val "$B" "$@")
  r=$(python3 -c "print(f'{$b/$a:.3f}')")
  echo "round $i: A($A) $a  B($B) $b  B/A $r"
  ra+=("$a"); rb+=("$b"); rr+=("$r")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "median A $(med "${ra[@]}")  B $(med "${rb[@]}")  B/A $(med "${rr[@]}")"
