#!/usr/bin/env bash
# Runs skysift's whole test suite: unit tests (shaders validated with naga), the
# integration tests (SExtractor reference on CPU and GPU, CPU/GPU parity, inputs,
# CLI) and doc tests, in release mode (one build serves the tests and the README's
# run command).
#
# GPU tests run on every machine: without a GPU, wgpu runs the shaders on Mesa's
# software Vulkan driver (lavapipe), which this script installs if it is missing
# (Debian/Ubuntu, as root or with sudo). SKYSIFT_REQUIRE_GPU=1 (the default here)
# makes a GPU test that finds no adapter fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) and retry" >&2
    exit 2
fi
have_lavapipe() {
    ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'
}
if ! have_lavapipe; then
    echo "installing Mesa's Vulkan drivers (lavapipe) for the GPU tests..." >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi
# CLASS_STAR's tests read SExtractor's neural network (GPL, not shipped with skysift),
# which Debian's source-extractor package installs.
if [ ! -f /usr/share/source-extractor/default.nnw ]; then
    echo "installing SExtractor (source-extractor) for its default.nnw..." >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends source-extractor >/dev/null
fi
# The FITS_LDAC test runs PSFEx (Debian's psfex) on skysift's catalog.
if ! command -v psfex >/dev/null 2>&1; then
    echo "installing PSFEx (psfex) for the FITS_LDAC test..." >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends psfex >/dev/null
fi
# The VOTable test reads skysift's VOTable with astropy (python3).
if ! python3 -c "import astropy" >/dev/null 2>&1; then
    echo "installing astropy for the VOTable test..." >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-astropy >/dev/null
    else
        python3 -m pip install -q astropy 2>/dev/null || python3 -m pip install -q --break-system-packages astropy
    fi
fi
export SKYSIFT_REQUIRE_GPU="${SKYSIFT_REQUIRE_GPU:-1}"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR="$(mktemp -d)"
    export XDG_RUNTIME_DIR
fi
cargo test --release --locked "$@"
