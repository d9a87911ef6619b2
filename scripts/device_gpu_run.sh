#!/usr/bin/env bash
# Runs the test suite and the GPU benchmarks on a machine with an NVIDIA GPU that
# lacks the Vulkan loader (the lent H100/H200 machines), from a tree built elsewhere.
#
# Preparation, on the build machine (same x86-64), from the repository root:
#   cargo build --release --all-targets && cargo test --release --no-run
#   cargo bench --bench stages --no-run
#   cargo build --release --example make_mosaic
#   mkdir -p .gl && (cd .gl && apt-get download libvulkan1)     # .gl/ is git-ignored
# Then on the GPU machine (carry: target, .gl; the images are made there, since the
# carry limit is 64 MiB):
#   bash scripts/device_gpu_run.sh "$OUT"
# It unpacks the loader, points it at the NVIDIA ICD, prints the adapter, runs the
# whole suite with the GPU tests required, makes an 8192² field and a 16384² mosaic on
# the machine's local disk (examples/make_mosaic.rs), times the GPU path on the field
# (stage and per-shader breakdown with --timings), compares the CPU and GPU catalogs,
# times the streamed mosaic from FITS on disk to catalog on both backends (the
# mosaic issue's throughput figure: Mpix/s = 16384² / wall seconds), and runs the
# criterion GPU benchmarks at 1024² to 8192², writing logs into the given folder.
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
imgs="${TMPDIR:-/tmp}/skysift-images"
mkdir -p "$imgs"
target/release/examples/make_mosaic 8192 "$imgs/field_8192.fits"
target/release/examples/make_mosaic 16384 "$imgs/mosaic_16384.fits"
for i in 1 2 3; do
    "$bin" "$imgs/field_8192.fits" -o "$out/gpu.fits" --backend gpu --timings 2>&1
done | tee "$out/gpu-8192.txt"
"$bin" "$imgs/field_8192.fits" -o "$out/cpu.fits" --backend cpu --timings 2>&1 | tee "$out/cpu-8192.txt"
cmp "$out/gpu.fits" "$out/cpu.fits" && echo "CPU and GPU catalogs identical" | tee -a "$out/gpu-8192.txt"
# The mosaic from FITS on local disk to catalog, streamed, each backend twice (the
# first run also warms the page cache); wall time and throughput.
for backend in gpu cpu; do
    for i in 1 2; do
        t0=$(date +%s.%N)
        "$bin" "$imgs/mosaic_16384.fits" -o "$out/mosaic-$backend.fits" --backend "$backend" \
            --memory-limit 4096 --timings 2>&1 | tail -4
        t1=$(date +%s.%N)
        python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[3]} run {sys.argv[4]}: {t:.2f} s, {16384*16384/t/1e6:.0f} Mpix/s')" "$t0" "$t1" "$backend" "$i"
    done
done 2>&1 | tee "$out/mosaic-16384.txt"
cmp "$out/mosaic-gpu.fits" "$out/mosaic-cpu.fits" && echo "mosaic: CPU and GPU catalogs identical" | tee -a "$out/mosaic-16384.txt"
# Criterion (built with `cargo bench --bench stages --no-run`): GPU stages, kernels
# and with transfers, next to the CPU stages.
for b in target/release/deps/stages-*; do
    if [ -x "$b" ] && [ ! -d "$b" ]; then
        SKYSIFT_BENCH_SIZES=1024,2048,4096,8192 "$b" --bench --warm-up-time 1 --measurement-time 3 2>&1 \
            | grep -E "^(cpu|gpu)|time:|thrpt:|adapter"
    fi
done | tee "$out/criterion.txt"
