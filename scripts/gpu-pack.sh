#!/usr/bin/env bash
# gpu-pack.sh — prepares the GPU check here, so that the GPU machine only runs it.
#
# THE STANDING RULE (README "GPU"): the first thing to do when a GPU machine is available is
#   1. here:  scripts/gpu-pack.sh --dry-run      (packs, prints what travels, runs the non-CUDA parts)
#   2. there: ONE run of scripts/gpu-check.sh, carrying the pack:
#        device run, carry ["gpu-pack"], timeout_s 480, command: scripts/gpu-check.sh
#      (its parts stop within a 420 s budget: the 15 device minutes keep room for a warm rerun)
#      (it writes ≤ 8 files to $OUT: summary.md holds the figures, log.txt everything)
#   3. the figures go into the README's GPU table with the device name; the "unverified" wording
#      there goes only when they are in.
#
# The GPU machine (../shared/notes/gpu-device.md) has no Go, no registry, no system OpenBLAS or
# libjpeg-turbo, and takes at most 64 MiB per command (tree + carried paths). So this script puts
# into one git-ignored folder, gpu-pack/ (PACK to change):
#   artnet.xz              `go build -tags xla,noblas -ldflags "-s -w"` of ./cmd/artnet: GoMLX's XLA
#                          backend (the PJRT CUDA plugin is dlopen'ed there), no OpenBLAS (the XLA
#                          backend does not use the pure-Go kernels); links only libc (checked)
#   libonnxruntime.so.1.xz ONNX Runtime 1.30.0's CPU core (third_party/onnxruntime, `make ort`)
#   configs/               the training configs the check reads (bf16 detection: `precision:`)
#   images/                testdata/paintings/*.jpg (predicted with the exported B4 there)
#   MANIFEST               every file with its size and sha256 (gpu-check.sh verifies them before
#                          it runs), the build (commit, Go, tags), ldd, glibc/libstdc++ needs, the
#                          binary's bf16 support, and what travels: tree + pack ≤ LIMIT_MIB
# xz because the binary (32 MB stripped) and ORT (46 MB) would not fit beside the ~16 MiB tree
# otherwise (xz -0: 78 → 26 MB in ~20 s; -6 saves 3 MB more for minutes); the GPU machine unpacks
# with xz (or Python's lzma). The uncompressed binary is built in out/gpu-pack-build/ (not carried).
#
# Usage:
#   scripts/gpu-pack.sh             # (re)build the pack; idempotent (recompresses only what changed)
#   scripts/gpu-pack.sh --dry-run   # the pack, then: what would travel and its size (fails over
#                                   # LIMIT_MIB), ldd against the device image's libraries, and
#                                   # scripts/gpu-check.sh --dry-run on the packed folder (every
#                                   # part that needs no CUDA; < 3 min on 2 cores). CI runs this.
# Environment: PACK (default gpu-pack), LIMIT_MIB (default 60), GO (default go),
#   ORT_LIB (default third_party/onnxruntime/libonnxruntime.so.1; `make ort` fetches it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dry=0
case "${1:-}" in
  --dry-run) dry=1 ;;
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "gpu-pack: unknown argument $1 (want --dry-run or nothing)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "gpu-pack: one argument at most (got $*)" >&2; exit 2; }

pack=${PACK:-gpu-pack}
case "$pack" in /*) ;; *) pack=$root/$pack ;; esac
limit_mib=${LIMIT_MIB:-60}
go=${GO:-go}
ort_lib=${ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
die() { echo "gpu-pack: $*" >&2; exit 1; }

# The device image (../shared/notes/gpu-device.md, KINDS.md): Ubuntu 24.04's Python 3.12.3 in
# /opt/torch/.venv, so glibc 2.39 and GCC 14's libstdc++ (GLIBCXX_3.4.33). A binary that needs
# more, or a library outside this list, would not start there.
device_glibc=2.39
device_glibcxx=3.4.33
device_libs='linux-vdso.so.1 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2'

command -v "$go" >/dev/null || die "$go not found (Go is needed here to build the device binary)"
command -v xz >/dev/null || die "xz not found (apt-get install xz-utils)"
[ -f "$ort_lib" ] || die "$ort_lib not found: run make ort (scripts/setup-ort.sh) first, or set ORT_LIB"
git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || die "$root is not a git checkout (the tree size is measured with git ls-files)"
case "$pack" in
  "$root"/?*) rel=${pack#"$root"/} ;;
  *) die "PACK=$pack is outside $root: the device's carry takes paths inside the repository" ;;
esac
git -C "$root" check-ignore -q "$rel/MANIFEST" ||
  die "$rel is not git-ignored: it would travel twice (in the tree and as carry); add /$rel/ to .gitignore"
mkdir -p "$pack/configs" "$pack/images" "$root/out/gpu-pack-build"
rm -rf "$pack/.build"  # where an earlier version of this script built (it would travel)

# The binary (built outside the pack, in out/: only the compressed copy travels); go build is
# incremental, and the binary is recompressed only when it changed.
bin=$root/out/gpu-pack-build/artnet
echo "gpu-pack: building ./cmd/artnet with -tags xla,noblas, stripped ($($go version | cut -d' ' -f3))"
CGO_ENABLED=1 nice -n 15 "$go" build -tags xla,noblas -ldflags "-s -w" -o "$bin.tmp" ./cmd/artnet
mv "$bin.tmp" "$bin"

# Checks the device image would fail on, here, before anything goes into the pack.
ldd_out=$(ldd "$bin" 2>&1) || die "ldd $bin failed: $ldd_out"
bad=""
while read -r lib _; do
  [ -n "$lib" ] || continue
  base=$(basename "$lib")
  case " $device_libs " in *" $base "*) ;; *) bad="$bad $base" ;; esac
done <<< "$ldd_out"
[ -z "$bad" ] || die "the device binary links$bad, which the GPU machine's image does not have (only:$device_libs); build with -tags xla,noblas or carry them"
ver_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }
need_glibc() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1; }
need_glibcxx() { objdump -T "$1" | grep -o 'GLIBCXX_[0-9.]*' | sed 's/GLIBCXX_//' | sort -V | tail -1; }
bin_glibc=$(need_glibc "$bin")
ort_glibc=$(need_glibc "$ort_lib")
ort_glibcxx=$(need_glibcxx "$ort_lib")
ver_le "$bin_glibc" "$device_glibc" || die "the device binary needs glibc $bin_glibc; the GPU machine has $device_glibc"
ver_le "$ort_glibc" "$device_glibc" || die "$ort_lib needs glibc $ort_glibc; the GPU machine has $device_glibc"
ver_le "$ort_glibcxx" "$device_glibcxx" || die "$ort_lib needs GLIBCXX_$ort_glibcxx; the GPU machine has $device_glibcxx"

# compress SRC DST.xz: only when SRC's sha256 differs from the one DST was made from.
compress() {
  local src=$1 dst=$2 sum
  sum="$(sha256sum "$src" | cut -d' ' -f1) xz-0"
  if [ -f "$dst" ] && [ "$(cat "$dst.src-sha256" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  nice -n 15 xz -T2 -0 -c "$src" > "$dst.tmp"
  mv "$dst.tmp" "$dst"
  echo "$sum" > "$dst.src-sha256"
}
compress "$bin" "$pack/artnet.xz"
compress "$ort_lib" "$pack/libonnxruntime.so.1.xz"

# Configs and images: copies, so the pack is what the check ran with even if the tree moves on.
rm -f "$pack"/configs/* "$pack"/images/*
cp configs/*.yaml "$pack/configs/"
cp testdata/paintings/*.jpg "$pack/images/"

# bf16: the recipe's `precision: bf16` (configs/*.yaml) and whether this binary's bench train can
# run it (--precision). gpu-check.sh decides from the binary; both go into the manifest.
bf16_cfg=$(grep -HE '^[[:space:]]*precision:' configs/*.yaml 2>/dev/null | sed 's/[[:space:]]*#.*//; s/:[[:space:]]*/: /g' | paste -sd';' || true)
if "$bin" bench train --help 2>/dev/null | grep -q -- '--precision'; then bf16_flag=yes; else bf16_flag=no; fi

# What would travel: the working tree as the device tool sends it (tracked files that exist +
# untracked files git does not ignore, plus shared/ when the checkout has one) and the pack.
tree_bytes=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null || true) |
  awk '{s+=$1} END {print s+0}')
shared_bytes=0
if [ -d shared ] && git check-ignore -q shared; then shared_bytes=$(du -sb shared | cut -f1); fi
mapfile -t pack_files < <(cd "$pack" && ls -1 artnet.xz libonnxruntime.so.1.xz configs/*.yaml images/*.jpg)
pack_bytes=$(find "$pack" -type f ! -name MANIFEST -printf '%s\n' | awk '{s+=$1} END {print s+0}')  # all of it travels
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b/1048576}'; }

{
  echo "# gpu-pack MANIFEST — made by scripts/gpu-pack.sh; scripts/gpu-check.sh verifies it on the GPU machine"
  echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "go: $($go version | cut -d' ' -f3-)"
  echo "build: go build -tags xla,noblas -ldflags \"-s -w\" ./cmd/artnet ($(stat -c %s "$bin") bytes, sha256 $(sha256sum "$bin" | cut -d' ' -f1))"
  echo "ort: $(basename "$ort_lib") ($(stat -c %s "$ort_lib") bytes, sha256 $(sha256sum "$ort_lib" | cut -d' ' -f1))"
  echo "needs: artnet glibc $bin_glibc; libonnxruntime glibc $ort_glibc, GLIBCXX $ort_glibcxx (device image: glibc $device_glibc, GLIBCXX $device_glibcxx)"
  echo "ldd artnet: $(awk '{print $1}' <<< "$ldd_out" | paste -sd' ')"
  echo "bf16: bench train --precision: $bf16_flag; precision in configs: ${bf16_cfg:-none}"
  echo "travels: tree $tree_bytes bytes ($(mib "$tree_bytes")) + shared/ $shared_bytes + pack $pack_bytes ($(mib "$pack_bytes")) = $((tree_bytes + shared_bytes + pack_bytes)) bytes ($(mib $((tree_bytes + shared_bytes + pack_bytes)))); limit $limit_mib MiB (device: 64 MiB)"
  echo "files: size sha256 path"
  for f in "${pack_files[@]}"; do
    printf '%s %s %s\n' "$(stat -c %s "$pack/$f")" "$(sha256sum "$pack/$f" | cut -d' ' -f1)" "$f"
  done
} > "$pack/MANIFEST.tmp"
mv "$pack/MANIFEST.tmp" "$pack/MANIFEST"

total=$((tree_bytes + shared_bytes + pack_bytes + $(stat -c %s "$pack/MANIFEST")))
echo "gpu-pack: $pack ready"
sed -n '/^build:/,/^travels:/p' "$pack/MANIFEST" | sed 's/^/  /'
if [ "$total" -gt $((limit_mib * 1048576)) ]; then
  die "tree + pack = $(mib "$total"), over $limit_mib MiB (the device takes 64 MiB per command): shrink the tree or the pack"
fi

if [ "$dry" = 1 ]; then
  echo
  echo "== dry run: what one device command would carry (tree + $rel/), largest first"
  { (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c '%s %n' -- 2>/dev/null || true)
    (cd "$root" && find "$rel" -type f -printf '%s %p\n')
  } | sort -rn | head -12 | awk '{printf "  %10d  %s\n", $1, $2}'
  echo "  total $total bytes = $(mib "$total") (limit $limit_mib MiB; the device's is 64 MiB)"
  echo
  echo "== dry run: ldd of the device binary (allowed on the GPU machine's image:$device_libs)"
  sed 's/^/  /' <<< "$ldd_out"
  echo
  ARTNET_PACK=$pack "$root/scripts/gpu-check.sh" --dry-run
fi
