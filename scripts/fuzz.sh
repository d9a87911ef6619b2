#!/usr/bin/env bash
# Fuzzes skysift's kernel-file parser and FITS header checks for SECONDS per target
# (default 60) from a random seed (or SKYSIFT_FUZZ_SEED). The test suite runs the same
# targets for 3 s from a fixed seed. A failing input is kept in target/fuzz-failures/
# and named; once fixed, copy it into tests/fuzz/kernel/ or tests/fuzz/fits/.
set -euo pipefail
cd "$(dirname "$0")/.."
export SKYSIFT_FUZZ_SECONDS="${1:-60}"
export SKYSIFT_FUZZ_SEED="${SKYSIFT_FUZZ_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
echo "fuzzing ${SKYSIFT_FUZZ_SECONDS} s per target, seed ${SKYSIFT_FUZZ_SEED}" >&2
cargo test --release --locked --test integration fuzz:: -- --nocapture
