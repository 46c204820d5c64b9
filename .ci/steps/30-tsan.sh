# ThreadSanitizer: forked contexts generating in parallel threads (tests/e2e/test_parallel.c),
# and a context and its forks freed in every order (tests/reliability/test_model_lifetime.c).
# The contexts use one compute thread each, so libgomp, which is not built with TSan, starts no
# threads of its own and needs no suppressions.
set -euo pipefail
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DR2GEN_TSAN=ON \
    -DR2GEN_BUILD_BENCH=OFF
cmake --build build-tsan -j "$(nproc)" --target test_parallel test_model_lifetime
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --test-dir build-tsan -R '^(r2gen_tiny_models|test_parallel|test_model_lifetime)$' \
    --output-on-failure
