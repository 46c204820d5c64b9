# The ABI check: the distribution build (Release with -g, so abidiff has DWARF) against the
# released baseline abi/<soname>.abi. Fails on any change that breaks programs built against the
# baseline unless the soname was bumped; additions pass. Steps 60 and 70 reuse this build.
set -euo pipefail
cmake/build-dist.sh
abi/abi.sh check build-dist/lib/libr2gen.so
