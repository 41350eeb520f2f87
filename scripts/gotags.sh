#!/usr/bin/env bash
# gotags.sh — prints the go build flag for this machine's native libraries: nothing when
# OpenBLAS's header (cblas.h, Debian libopenblas-dev) compiles with cgo's C compiler, else
# `-tags=noblas` (engine/'s pure-Go matrix-product loop instead of OpenBLAS) plus one line on
# stderr saying so. With ARTNET_REQUIRE_DEPS=1 a missing OpenBLAS is an error (exit 1).
# The Makefile calls it for every build, vet and test; `artnet doctor` reports the result.
set -uo pipefail
go=${GO:-go}
cc=$($go env CC 2>/dev/null)
cgo=$($go env CGO_ENABLED 2>/dev/null)
if [ "$cgo" = 1 ] && printf '#include <cblas.h>\n' | ${cc:-gcc} -E -x c - >/dev/null 2>&1; then
  exit 0
fi
why="no cblas.h for ${cc:-gcc}"
[ "$cgo" = 1 ] || why="cgo is off (no C compiler?)"
if [ "${ARTNET_REQUIRE_DEPS:-}" = 1 ]; then
  echo "gotags: OpenBLAS missing ($why): apt-get install libopenblas-dev (ARTNET_REQUIRE_DEPS=1: failing)" >&2
  exit 1
fi
echo "make: OpenBLAS missing ($why): building the pure-Go kernels (-tags=noblas, slower training); apt-get install libopenblas-dev for OpenBLAS" >&2
echo "-tags=noblas"
