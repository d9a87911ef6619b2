#!/usr/bin/env bash
# Runs the test suite and the GPU benchmarks on a machine with an NVIDIA GPU that
# lacks the Vulkan loader (the lent H100/H200 machines), from a tree built elsewhere.
#
# Preparation, on the build machine (same x86-64), from the repository root:
#   cargo build --release --all-targets && cargo test --release --no-run
#   cargo bench --bench stages --no-run
#   mkdir -p .gl && (cd .gl && apt-get download libvulkan1)     # .gl/ is git-ignored
#   python3 scripts/bench_compare.py --sizes 8192 --repeat 1 --no-sextractor  # makes .bench/field_8192.fits
# Then on the GPU machine (carry: target, .gl, .bench):
#   bash scripts/device_gpu_run.sh "$OUT"
# It unpacks the loader, points it at the NVIDIA ICD, prints the adapter, runs the
# whole suite with the GPU tests required, times the GPU path on the 8192² field
# (stage and per-shader breakdown with --timings), compares the CPU and GPU catalogs,
# and runs the criterion GPU benchmarks at 1024² to 8192², writing logs into the
# given folder.
set -uo pipefail
out="${1:-/tmp/skysift-gpu-run}"
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export SKYSIFT_REQUIRE_GPU=1
bin=target/release/skysift
"$bin" --gpu-info 2>&1 | tee "$out/gpu-info.txt"
# The test binaries were built on the build machine; run them directly.
for t in target/release/deps/skysift-* target/release/deps/integration-*; do
    [ -x "$t" ] && [ ! -d "$t" ] && "$t" 2>&1 | tail -3
done | tee "$out/tests.txt"
for i in 1 2 3; do
    "$bin" .bench/field_8192.fits -o "$out/gpu.fits" --backend gpu --timings 2>&1
done | tee "$out/gpu-8192.txt"
"$bin" .bench/field_8192.fits -o "$out/cpu.fits" --backend cpu --timings 2>&1 | tee "$out/cpu-8192.txt"
cmp "$out/gpu.fits" "$out/cpu.fits" && echo "CPU and GPU catalogs identical" | tee -a "$out/gpu-8192.txt"
# Criterion (built with `cargo bench --bench stages --no-run`): GPU stages, kernels
# and with transfers, next to the CPU stages.
for b in target/release/deps/stages-*; do
    if [ -x "$b" ] && [ ! -d "$b" ]; then
        SKYSIFT_BENCH_SIZES=1024,2048,4096,8192 "$b" --bench --warm-up-time 1 --measurement-time 3 2>&1 \
            | grep -E "^(cpu|gpu)|time:|thrpt:|adapter"
    fi
done | tee "$out/criterion.txt"
