#!/bin/sh
# The shared library exports only the public API (r2gen_*) and carries the soname libr2gen.so.0.
lib="$1"
status=0
others=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | grep -v '^r2gen_' | grep -v '^R2GEN_0$')
if [ -n "$others" ]; then
    echo "exported symbols outside the r2gen_ namespace:"; echo "$others"; status=1
fi
count=$(nm -D --defined-only "$lib" | grep -c ' r2gen_')
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
if [ "$soname" != "libr2gen.so.0" ]; then
    echo "soname is '$soname', expected libr2gen.so.0"; status=1
fi
if [ $status -eq 0 ]; then echo "exports: $count r2gen_ symbols, soname $soname"; echo "1 passed, 0 failed"; fi
exit $status
