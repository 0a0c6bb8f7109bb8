#!/usr/bin/env bash
# Cross-build the CPU crates and the facade's conformance, error and write tests for 64-bit ARM
# and run them under qemu-user (no ARM machine here): checks that the aarch64 build — NEON
# through the compiler's baseline and the NEON block dots of qdot_i16.rs, no x86 kernels —
# computes the same results. Speed under
# emulation means nothing; this is a correctness check. Needs Debian packages (installed here
# when missing) and the rustup target.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
fi
rustup target add aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo test --release --target aarch64-unknown-linux-gnu --target-dir "${ARM_TARGET_DIR:-target/aarch64}" \
  -p plumb-core -p plumb-cpu -p plumb --lib --tests \
  --test conformance --test errors --test write_slice
