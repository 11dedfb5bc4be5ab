#!/bin/sh
# Runs the fuzz targets with cargo-fuzz on the stable compiler.
#
#   fuzz/run.sh                        every target, 60 s each
#   fuzz/run.sh frame                  one target, 60 s
#   fuzz/run.sh frame -runs=10000000   one target, libFuzzer flags after it
#   fuzz/run.sh all -runs=10000000     every target in turn, same flags
#
# Needs `cargo install cargo-fuzz` and a C++ compiler (libFuzzer is built
# from source). New corpus inputs go to fuzz/corpus/<target>/, crashes to
# fuzz/artifacts/<target>/.
set -eu
cd "$(dirname "$0")"

target=all
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    target=$1
    shift
fi
[ $# -gt 0 ] || set -- -max_total_time=60

# cargo-fuzz passes nightly-only flags for the sanitizers; without one, the
# rest (SanitizerCoverage instrumentation) works on stable once
# RUSTC_BOOTSTRAP lets cargo-fuzz's `-Z` build options through.
export RUSTC_BOOTSTRAP=1

if [ "$target" = all ]; then
    targets=$(cargo fuzz list)
else
    targets=$target
fi
for t in $targets; do
    echo "== $t"
    cargo fuzz run --sanitizer none "$t" -- "$@"
done
