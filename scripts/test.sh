#!/usr/bin/env bash
# Runs skysift's whole test suite: unit tests, integration tests (SExtractor
# reference, inputs, CLI) and doc tests, in release mode (one build serves the
# tests and the README's run command; measured shorter than debug + slow tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) and retry" >&2
    exit 2
fi
cargo test --release --locked "$@"
