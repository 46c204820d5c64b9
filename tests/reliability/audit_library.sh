#!/bin/sh
# Audit of the built libr2gen.so for the library's promises that a symbol table can show:
#  1. no writable global state: every object in .data or .bss is named in writable_allowlist.txt,
#     which says why it is harmless (thread-local state lives in .tbss and is allowed);
#  2. it never prints: it imports none of the stdio functions that write to a stream, nor
#     stdout/stderr themselves;
#  3. it never ends the process: it imports none of exit, _exit, _Exit, quick_exit, abort,
#     __assert_fail (assert), err/errx.
#  4. it exports no data symbols (only functions, checked against r2gen_* by tests/api's exports).
# Usage: audit_library.sh <libr2gen.so> <writable_allowlist.txt>
lib="$1"
allowlist="$2"
status=0
passed=0

fail() { echo "$1"; status=1; }

allowed=$(sed 's/#.*//' "$allowlist" | awk 'NF {print $1}')
# objdump -t: "<addr> <flags> O <section> <size> <name>"; keep objects in .data and .bss.
writable=$(objdump -t "$lib" | awk 'NF >= 5 && $(NF-3) == "O" && ($(NF-2) == ".data" || $(NF-2) == ".bss") {print $NF}')
unexpected=""
for name in $writable; do
    case "$name" in
    __asan_* | ___asan_* | __odr_asan* | __ubsan_* | __tsan_* | __sancov_*) continue ;; # sanitizers
    esac
    echo "$allowed" | grep -qxF "$name" || unexpected="$unexpected $name"
done
if [ -n "$unexpected" ]; then
    fail "writable globals not in $(basename "$allowlist"):$unexpected"
else
    passed=$((passed + 1))
fi

imports=$(nm -D --undefined-only "$lib" | awk '{print $NF}' | sed 's/@.*//')
check_imports() {
    what="$1"
    shift
    found=""
    for f in "$@"; do
        echo "$imports" | grep -qxF "$f" && found="$found $f"
    done
    if [ -n "$found" ]; then fail "the library imports functions that $what:$found"; else passed=$((passed + 1)); fi
}
check_imports "print" printf vprintf fprintf vfprintf dprintf vdprintf puts fputs putc fputc \
    putchar fwrite perror psignal psiginfo syslog vsyslog warn warnx vwarn vwarnx stdout stderr \
    __printf_chk __fprintf_chk __vfprintf_chk __vprintf_chk
check_imports "end the process" exit _exit _Exit quick_exit abort __assert_fail __assert \
    __assert_perror_fail err errx verr verrx raise kill pthread_exit

data=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[DBVR]$/ {print $3}')
if [ -n "$data" ]; then fail "exported data symbols: $data"; else passed=$((passed + 1)); fi

echo "writable objects: $(echo $writable | wc -w), all allowed: $([ -z "$unexpected" ] && echo yes || echo no)"
echo "$passed passed, $status failed"
exit $status
