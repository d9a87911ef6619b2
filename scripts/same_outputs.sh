#!/usr/bin/env bash
# Runs two skysift builds over a matrix of images, options, strip heights, backends and
# thread counts, and compares every output (catalogs, check images, regions, pictures)
# byte for byte. Used to show that a change to the inside changes no result.
#
#   scripts/same_outputs.sh OLD_BINARY NEW_BINARY [WORK_DIR]
#
# Prints one line per case that differs and a summary; exits 1 if any differs.
set -uo pipefail
old=${1:?usage: same_outputs.sh OLD NEW [DIR]}
new=${2:?usage: same_outputs.sh OLD NEW [DIR]}
work=${3:-$(mktemp -d)}
cd "$(dirname "$0")/.."
d=tests/data
mkdir -p "$work"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work}
cases=0
diffs=0
# run NAME ARGS...: both builds, same arguments, outputs compared.
run() {
    local name=$1
    shift
    for b in old new; do
        local bin=$old
        [ $b = new ] && bin=$new
        rm -rf "$work/$b" && mkdir -p "$work/$b"
        local args=()
        for a in "$@"; do args+=("${a//@OUT@/$work/$b}"); done
        "$bin" -q "${args[@]}" >"$work/$b.stdout" 2>"$work/$b.stderr"
        echo "rc=$?" >>"$work/$b.stdout"
    done
    cases=$((cases + 1))
    if ! diff -r "$work/old" "$work/new" >/dev/null || ! cmp -s "$work/old.stdout" "$work/new.stdout"; then
        diffs=$((diffs + 1))
        echo "DIFFERENT: $name"
        diff -r "$work/old" "$work/new" | head -3
        diff "$work/old.stdout" "$work/new.stdout" | head -3
    fi
}
whole_checks=(--check-image SEGMENTATION:@OUT@/seg.fits --check-image BACKGROUND:@OUT@/back.fits
    --check-image BACKGROUND_RMS:@OUT@/rms.fits --check-image -BACKGROUND:@OUT@/sub.fits
    --check-image FILTERED:@OUT@/filt.fits --check-image OBJECTS:@OUT@/obj.fits
    --check-image -OBJECTS:@OUT@/mobj.fits --check-image APERTURES:@OUT@/ap.fits
    --check-image MINIBACKGROUND:@OUT@/miniback.fits --regions @OUT@/reg.reg)
stream_checks=(--check-image SEGMENTATION:@OUT@/seg.fits --check-image -BACKGROUND:@OUT@/sub.fits
    --check-image FILTERED:@OUT@/filt.fits --check-image OBJECTS:@OUT@/obj.fits --regions @OUT@/reg.reg)
images=("$d/sep_image.fits" "$d/sim_crop.fits" "$d/emmi_galaxies.fits.gz")
optsets=(
    ""
    "--no-clean"
    "--deblend-mincont 1"
    "--deblend-mincont 1 --no-clean"
    "--thresh-rms map"
    "--filter none"
    "--filter-type matched"
    "--filter-type matched --noise-image $d/sim_crop.sex_rms.fits.gz"
    "--threshold-image $d/sim_crop.sex_rms.fits.gz"
    "--connectivity four --detect-minarea 3"
    "--thresh-type absolute --detect-thresh 30"
    "--filter-fwhm 3 --satur-level 1200 --gain 2"
)
for img in "${images[@]}" "$d/sim_masked_crop.fits"; do
    for o in "${optsets[@]}"; do
        # The noise and threshold images are sim_crop's shape.
        case "$o" in *sim_crop.sex_rms*) [ "$img" = "$d/sim_crop.fits" ] || continue ;; esac
        extra=()
        [ "$img" = "$d/sim_masked_crop.fits" ] && extra=(--mask "$d/sim_masked_crop.mask.fits")
        for backend in cpu gpu; do
            for threads in 1 2; do
                # shellcheck disable=SC2086
                run "$(basename "$img") [$o] $backend t$threads whole" "$img" -o @OUT@/cat.fits $o "${extra[@]}" \
                    --backend $backend --threads $threads "${whole_checks[@]}" --png-dir @OUT@/png
                for rows in 1 2 3 5 16 64; do
                    [ $threads = 2 ] && [ $rows -lt 16 ] && continue
                    # shellcheck disable=SC2086
                    run "$(basename "$img") [$o] $backend t$threads rows $rows" "$img" -o @OUT@/cat.csv $o "${extra[@]}" \
                        --backend $backend --threads $threads --stream-rows $rows "${stream_checks[@]}"
                done
            done
        done
    done
done
echo "$cases cases, $diffs different"
[ $diffs -eq 0 ]
