#!/usr/bin/env bash
# The ABI check of libr2gen against the released baseline abi/<soname>.abi (libabigail).
#
#   abi/abi.sh check LIB      compare LIB with the baseline: exit 1 on an incompatible change
#   abi/abi.sh baseline LIB   write the baseline from LIB: only when a release is made
#
# LIB must carry DWARF (cmake/build-dist.sh builds Release with -g). Only what LIB exports (the
# version script's r2gen_* symbols) and the types declared in include/ are compared: hidden
# internal symbols and the library's private types are not part of the ABI.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
lib=${2:-}
if [[ $mode != check && $mode != baseline || -z $lib ]]; then
    echo "usage: abi/abi.sh check|baseline LIB" >&2
    exit 2
fi
soname_of() { objdump -p "$1" | awk '$1 == "SONAME" {print $2}'; }
soname=$(soname_of "$lib")
public_only=(--exported-interfaces-only --drop-private-types)

if [[ $mode == baseline ]]; then
    rm -f abi/*.abi
    abidw "${public_only[@]}" --headers-dir include --no-corpus-path --no-comp-dir-path \
        --short-locs --out-file "abi/$soname.abi" "$lib"
    echo "wrote abi/$soname.abi"
    exit 0
fi

baselines=(abi/*.abi)
if [[ ${#baselines[@]} -ne 1 || ! -f ${baselines[0]} ]]; then
    echo "abi: expected exactly one baseline abi/<soname>.abi, found: ${baselines[*]}" >&2
    exit 1
fi
baseline=${baselines[0]}
baseline_soname=$(sed -n "s/^<abi-corpus [^>]* soname='\([^']*\)'.*/\1/p" "$baseline")

# abidiff's exit status is a bit set: 1 error, 2 usage error, 4 some ABI change, 8 an incompatible
# change (a removed function or variable, a soname change). It classifies a changed layout of an
# existing type (a reordered, resized or removed struct field; a renumbered enumerator) as 4 only,
# and additions (new functions, enumerators appended) as 4 too. So the verdict comes from a second
# run that leaves additions out: whatever is left in it, 4 or 8, breaks programs already built.
# abi/r2gen.abignore allows the one sanctioned change, a struct read through a pointer growing at
# its end.
compare=(abidiff "${public_only[@]}" --hd2 include --suppressions abi/r2gen.abignore)
echo "abi: $lib ($soname) against $baseline ($baseline_soname)"
status=0
"${compare[@]}" "$baseline" "$lib" || status=$?
if (( status & 3 )); then
    echo "abi: abidiff failed (exit status $status)" >&2
    exit 1
fi
if [[ $soname != "$baseline_soname" ]]; then
    echo "abi: soname changed from $baseline_soname to $soname: a deliberate ABI break; the"
    echo "abi: baseline abi/$soname.abi is written when this version is released"
    exit 0
fi
verdict=0
"${compare[@]}" --no-added-syms "$baseline" "$lib" > /dev/null || verdict=$?
if (( verdict & 12 )); then
    echo "abi: INCOMPATIBLE with $baseline (abidiff exit status $verdict without additions):"
    echo "abi: programs built against $baseline_soname would break. Undo the change, or keep the"
    echo "abi: old layout under the old symbol version (README, 'ABI policy'), or bump the soname."
    exit 1
fi
if (( status & 4 )); then
    echo "abi: compatible: additions only"
else
    echo "abi: compatible: no change reported"
fi
