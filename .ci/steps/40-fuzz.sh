# The libFuzzer targets (clang, ASan + UBSan): each runs first over its committed corpus
# (fuzz/corpus/<target>: seeds and the regression inputs of past findings), then fuzzes for
# FUZZ_SECONDS (default 60). Any crash, leak, sanitizer report or timeout fails the step; the
# input that caused it is left in build-fuzz/findings/<target>/.
set -euo pipefail
seconds="${FUZZ_SECONDS:-60}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DR2GEN_FUZZ=ON \
    -DR2GEN_BUILD_TESTS=OFF -DR2GEN_BUILD_BENCH=OFF
cmake --build build-fuzz -j "$(nproc)" --target fuzz_all
for target in gguf image raw_image tokenizer; do
    work="build-fuzz/findings/$target"
    rm -rf "$work" && mkdir -p "$work/corpus"
    echo "-- fuzz_$target: ${seconds} s"
    build-fuzz/fuzz/fuzz_$target -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "fuzz/corpus/$target" \
        > "$work/log.txt" 2>&1 || { tail -60 "$work/log.txt"; exit 1; }
    grep -E '^stat::number_of_executed_units|^#[0-9]+[[:space:]]+DONE' "$work/log.txt" || true
done
