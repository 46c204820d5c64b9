# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DR2GEN_SANITIZE=ON -DR2GEN_WERROR=ON \
    -DR2GEN_BUILD_BENCH=OFF
cmake --build build-asan -j "$(nproc)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure
