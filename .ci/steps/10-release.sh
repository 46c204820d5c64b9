# The README's commands, with warnings as errors.
set -euo pipefail
cmake -S . -B build -DR2GEN_WERROR=ON
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure
