# The Debian package: cpack in the distribution build, installed with apt on this Debian 12
# machine (apt resolves its Depends), the installed CLI, pkg-config file and Python package run,
# and the package removed again so that nothing after this step sees it.
set -euo pipefail
cmake/build-dist.sh
rm -f build-dist/r2gen_*.deb
(cd build-dist && cpack -G DEB)
deb=$(ls build-dist/r2gen_*.deb)
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"

trap 'apt-get purge -y -qq r2gen > /dev/null' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "./$deb"
r2gen-report --version
ldd "$(command -v r2gen-report)" | grep libr2gen
pkg-config --modversion r2gen
/usr/bin/python3 tools/make_demo.py build-dist/demo
r2gen-report --model build-dist/demo/demo-model.gguf build-dist/demo/demo-xray.pgm
/usr/bin/python3 -c 'import r2gen; print("python", r2gen.__file__, r2gen.version())'
