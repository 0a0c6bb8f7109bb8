#!/usr/bin/env python3
"""Mutation fuzzing of the model file parsers through the real binary: the test GGUF (SmolLM2
Q4_1) and safetensors (MiniLM) files with a few bytes changed, set to 0/0x7f/0x80/0xff, or the
file cut short, in the parts a parser reads (GGUF: the header, the tensor infos, the metadata;
safetensors: the length prefix and the JSON header). Each mutant goes through `plumb inspect`
and a model command (`generate --max-tokens 2` / `embed`). A crash, a panic, an exit status
other than 0, 1 or 2, or a run over 60 s is reported and its file kept in the work folder.
Mutants are written to a copy; the inputs are only read.

    cargo build --release -p plumb-cli
    python3 scripts/fuzz_headers.py [SEED] [ITERATIONS]      (default 1 and 100)

PLUMB_MODELS: where scripts/fetch_models.sh put the models (default target/models);
FUZZ_DIR: the work folder (default /tmp/plumb-fuzz).
"""
import os
import random
import shutil
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.environ.get("PLUMB_MODELS", os.path.join(ROOT, "target", "models"))
PLUMB = os.path.join(ROOT, "target", "release", "plumb")
GGUF = os.path.join(MODELS, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM = os.path.join(MODELS, "all-MiniLM-L6-v2")
WORK = os.environ.get("FUZZ_DIR", "/tmp/plumb-fuzz")
ENV = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"), RUST_BACKTRACE="0")


def mutate(rng, data, lo, hi):
    """`data` with 1-6 changes between byte offsets lo and hi, or cut at a point there."""
    b = bytearray(data)
    if rng.random() < 0.15:
        return bytes(b[: rng.randrange(lo, hi)])
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(lo, hi)
        r = rng.random()
        if r < 0.4:
            b[i] = rng.randrange(256)
        elif r < 0.7:
            b[i] ^= 1 << rng.randrange(8)
        else:
            for j in range(rng.choice([1, 2, 4, 8])):
                if i + j < len(b):
                    b[i + j] = rng.choice([0, 0xFF, 0x7F, 0x80])
    return bytes(b)


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    for path in (PLUMB, GGUF, os.path.join(MINILM, "model.safetensors")):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing (build plumb-cli; scripts/fetch_models.sh)")
    rng = random.Random(seed)
    os.makedirs(WORK, exist_ok=True)
    g = open(GGUF, "rb").read()
    s = open(os.path.join(MINILM, "model.safetensors"), "rb").read()
    header = 8 + struct.unpack("<Q", s[:8])[0]
    # the GGUF's tensor infos run from the first tensor's name to a little past the last one's
    tinfo = g.find(b"token_embd.weight") - 16
    tinfo_end = g.find(b"output_norm.weight") + 200
    g_regions = [(0, 64), (tinfo, tinfo_end), (tinfo, tinfo_end), (0, tinfo_end)]
    # a model folder whose weights are the mutant and whose other files are the real ones
    mdir = os.path.join(WORK, "minilm")
    os.makedirs(mdir, exist_ok=True)
    for f in os.listdir(MINILM):
        link = os.path.join(mdir, f)
        if f != "model.safetensors" and not os.path.lexists(link):
            os.symlink(os.path.join(MINILM, f), link)
    bad = 0
    for it in range(iterations):
        if it % 2 == 0:
            path = os.path.join(WORK, "mutant.gguf")
            lo, hi = rng.choice(g_regions)
            open(path, "wb").write(mutate(rng, g, lo, hi))
            runs = [["inspect", path], ["generate", path, "--prompt", "hi", "--max-tokens", "2"]]
        else:
            path = os.path.join(mdir, "model.safetensors")
            lo, hi = rng.choice([(0, 16), (0, header)])
            open(path, "wb").write(mutate(rng, s, lo, hi))
            runs = [["inspect", path], ["embed", mdir, "hello"]]
        for args in runs:
            try:
                r = subprocess.run([PLUMB] + args, env=ENV, capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                bad += 1
                keep = os.path.join(WORK, f"timeout_{seed}_{it}{os.path.splitext(path)[1]}")
                shutil.copy(path, keep)
                print(f"TIMEOUT {args[0]}: kept {keep}")
                continue
            err = r.stderr.decode(errors="replace")
            if r.returncode not in (0, 1, 2) or "panicked" in err:
                bad += 1
                keep = os.path.join(WORK, f"crash_{seed}_{it}{os.path.splitext(path)[1]}")
                shutil.copy(path, keep)
                print(f"CRASH {args[0]} exit {r.returncode}: kept {keep}\n{err[-400:]}")
    print(f"fuzz_headers: seed {seed}, {iterations} mutants, {2 * iterations} runs, {bad} crashes or timeouts")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
