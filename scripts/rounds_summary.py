#!/usr/bin/env python3
"""Summarise RESULT lines tagged `round=N` (from `ROUNDS=N crates/plumb-cpu/benches/peers_cpu.sh`
or `scripts/bench_cpu_interleaved.sh`): one row per (op, dtype, shape) with each framework's
median over the rounds, and Plumb ÷ the best peer computed within each round (the peers and
Plumb of one round ran minutes apart, so drift between rounds cancels), as min / median / max.
Higher is better for every unit these benchmarks print (GFLOP/s, GB/s, sentences/s, tokens/s)."""
import re
import statistics
import sys
from collections import defaultdict

vals = defaultdict(lambda: defaultdict(dict))  # key -> round -> framework -> value
units = {}
for path in sys.argv[1:] or ["/dev/stdin"]:
    for line in open(path):
        if not line.startswith("RESULT "):
            continue
        d = dict(re.findall(r"(\w+)=(\S+)", line))
        if "round" not in d or not re.fullmatch(r"[0-9.]+", d.get("value", "")):
            continue  # untagged, or a peer that printed `unsupported`
        fw = {"sentence-transformers": "torch"}.get(d["framework"], d["framework"])
        key = (d["op"], d["dtype"], d["shape"])
        vals[key][d["round"]][fw] = float(d["value"])
        units[key] = d.get("unit", "")

print("| op | dtype | shape | unit | medians over rounds | Plumb ÷ best peer, per round: min / median / max | rounds |")
print("|---|---|---|---|---|---|---:|")
for key in sorted(vals):
    rounds = vals[key]
    fws = sorted({fw for r in rounds.values() for fw in r}, key=lambda f: (f != "plumb", f))
    med = {fw: statistics.median([r[fw] for r in rounds.values() if fw in r]) for fw in fws}
    ratios = []
    for r in rounds.values():
        peers = [v for fw, v in r.items() if fw != "plumb"]
        if "plumb" in r and peers:
            ratios.append(r["plumb"] / max(peers))
    cells = ", ".join(f"{fw} {med[fw]:.1f}" for fw in fws)
    ratio = (
        f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}" if ratios else "no peer"
    )
    print(f"| {key[0]} | {key[1]} | {key[2]} | {units[key]} | {cells} | {ratio} | {len(ratios)} |")
