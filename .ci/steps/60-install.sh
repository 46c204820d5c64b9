# cmake --install into a staging prefix, then build examples/consumer, a separate project, against
# it twice (find_package(r2gen) and pkg-config --cflags --libs r2gen) and run what each built, the
# installed CLI and the installed Python package on the demo model.
set -euo pipefail
cmake/build-dist.sh
stage=$PWD/build-dist/stage
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' build-dist/CMakeCache.txt)
rm -rf "$stage" build-dist/consumer-cmake build-dist/consumer-pkgconfig build-dist/report-first.txt
cmake --install build-dist --prefix "$stage"
(cd "$stage" && find . ! -type d | sort)

# The soname links: libr2gen.so -> libr2gen.so.0 -> libr2gen.so.0.x.y
[ "$(readlink "$stage/$libdir/libr2gen.so")" = libr2gen.so.0 ]
readlink "$stage/$libdir/libr2gen.so.0" | grep -qx 'libr2gen\.so\.0\.[0-9]*\.[0-9]*'

cmake -S examples/consumer -B build-dist/consumer-cmake -DCMAKE_PREFIX_PATH="$stage"
cmake --build build-dist/consumer-cmake
export PKG_CONFIG_PATH=$stage/$libdir/pkgconfig
echo "pkg-config --cflags --libs r2gen: $(pkg-config --cflags --libs r2gen)"
make -C examples/consumer OUT="$PWD/build-dist/consumer-pkgconfig"

/usr/bin/python3 tools/make_demo.py build-dist/demo
demo=(build-dist/demo/demo-model.gguf build-dist/demo/demo-xray.pgm)
# Every program must write the same, non-empty report: the one library under all of them.
run() {
    echo "== $*"
    "$@" "${demo[@]}" | tee build-dist/report.txt
    [ -s build-dist/report.txt ]
    [ -f build-dist/report-first.txt ] || cp build-dist/report.txt build-dist/report-first.txt
    cmp build-dist/report.txt build-dist/report-first.txt
}
# The CLI finds the library by its RUNPATH, the CMake-built consumers by their build RUNPATH; the
# pkg-config ones have none.
"$stage/bin/r2gen-report" --version
run "$stage/bin/r2gen-report" --model
run build-dist/consumer-cmake/minimal
run build-dist/consumer-cmake/report-cpp
export LD_LIBRARY_PATH=$stage/$libdir
run build-dist/consumer-pkgconfig/minimal
run build-dist/consumer-pkgconfig/report-cpp
PYTHONPATH=$stage/lib/python3/dist-packages /usr/bin/python3 - "$stage" "${demo[@]}" <<'PY'
import sys
import r2gen
stage, model, image = sys.argv[1:]
assert r2gen.__file__.startswith(stage), r2gen.__file__
with r2gen.Model(model) as m:
    report = m.report([image])
print("python", r2gen.version(), "->", report)
with open("build-dist/report-first.txt") as f:
    assert report == f.read().rstrip("\n"), "the Python report differs"
PY
