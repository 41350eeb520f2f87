#!/usr/bin/env bash
# fresh-machine-check.sh — the test of the README: on a brand-new Debian bookworm root, from a
# clone of this repository's HEAD commit, run `make demo` and then `make test`, with nothing
# installed by hand.
#
#   scripts/fresh-machine-check.sh            online: Debian's mirrors reachable; every optional
#                                             dependency must get installed (ARTNET_REQUIRE_DEPS=1:
#                                             a fallback build or a skipped tool test fails it)
#   scripts/fresh-machine-check.sh --offline  Debian's package servers unreachable from the root
#                                             (apt goes through a closed proxy port; the Go and npm
#                                             registries still work): the build must succeed with
#                                             the pure-Go kernels and the tool tests must skip
#   --keep      leave the root (and its build caches) in place for a look afterwards
#   --demo-only stop after `make demo`
#
# The root: `debootstrap --variant=minbase` plus what a fresh machine of this kind carries (gcc,
# make, git, curl, python3, CA certificates); this machine's apt sources and registry
# configuration (apt.conf.d, auth, keyrings), CA certificates, npm and Go configuration are
# copied in; Go (/usr/local/go) and Node + npm are bound in read-only from this machine;
# ../shared/wikiart is bound in read-only when present (the integration tests then run).
# Downloaded .debs are cached between runs (debootstrap --cache-dir, $ARTNET_FRESH_DEBS) — nothing
# else is. Work folder: $ARTNET_FRESH_WORK (default /var/tmp/artnet-fresh); the root and the log are
# named by mode and process id, so several checks can run at once.
# Runs as root (debootstrap, chroot); everything runs in private mount and PID namespaces, so no
# mount or process outlives the check. The log goes to stdout and to $WORK/fresh-<mode>.log;
# exit status 0 only when both commands succeeded (and, online, nothing fell back).
set -euo pipefail

mode=online keep= demo_only=
for a in "$@"; do
  case "$a" in
  --offline) mode=offline ;;
  --keep) keep=1 ;;
  --demo-only) demo_only=1 ;;
  *) echo "fresh-machine-check: unknown argument $a (--offline, --keep, --demo-only)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: needs root (debootstrap, chroot): sudo $0 $*" >&2; exit 2; }

src=$(cd "$(dirname "$0")/.." && pwd)
work=${ARTNET_FRESH_WORK:-/var/tmp/artnet-fresh}
suite=bookworm
goroot=$(go env GOROOT 2>/dev/null || true)
node=$(command -v node || true)
npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm || echo /nonexistent)")")" 2>/dev/null || true)
[ -x "$goroot/bin/go" ] || { echo "fresh-machine-check: no Go on this machine to bind in" >&2; exit 2; }
[ -n "$node" ] && [ -f "$npmdir/bin/npm-cli.js" ] || { echo "fresh-machine-check: no node + npm on this machine to bind in" >&2; exit 2; }
if ! command -v debootstrap >/dev/null; then
  echo "fresh-machine-check: installing debootstrap (for this check only)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
shared=
[ -d "$src/../shared/wikiart/images" ] && shared=$(cd "$src/../shared/wikiart" && pwd)
[ -z "$shared" ] && [ -n "${ARTNET_WIKIART:-}" ] && [ -d "$ARTNET_WIKIART/images" ] && shared=$(cd "$ARTNET_WIKIART" && pwd)

debs=${ARTNET_FRESH_DEBS:-$work/debs}
mkdir -p "$debs"
log="$work/fresh-$mode-$$.log"
rootfs="$work/root-$mode-$$"
exec > >(tee "$log") 2>&1
stamp() { echo "[fresh $(date -u +%H:%M:%S)] $*"; }
cleanup() {
  if [ -z "$keep" ] && [ -d "$rootfs" ]; then rm -rf --one-file-system "$rootfs"; fi
}
trap cleanup EXIT

if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
  stamp "note: $src has uncommitted changes; the check runs the committed HEAD"
fi
commit=$(git -C "$src" rev-parse HEAD)
stamp "mode $mode; commit $(git -C "$src" log -1 --format='%h %s' | cut -c1-100); load $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

# 1. A new Debian root.
rm -rf --one-file-system "$rootfs"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
t0=$SECONDS
stamp "debootstrap $suite from $mirror"
debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev,make,git,curl,python3 \
  --cache-dir="$debs" "$suite" "$rootfs" "$mirror" >"$work/debootstrap-$mode-$$.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap-$mode-$$.log"; stamp "FAIL: debootstrap"; exit 1; }
stamp "root ready in $((SECONDS - t0)) s ($(du -sh --one-file-system "$rootfs" | cut -f1))"

# 2. What a fresh machine of this kind carries: apt sources and registry configuration, CA
# certificates, DNS, npm and Go configuration; Go and Node bound in (below).
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
  /etc/apt/auth.conf.d/* /etc/apt/trusted.gpg.d/* /etc/apt/keyrings/* /etc/apt/apt.conf.d/* \
  /usr/local/share/ca-certificates/* /etc/ssl/certs/ca-certificates.crt /etc/resolv.conf /etc/hosts \
  /etc/npmrc /usr/etc/npmrc /root/.npmrc /root/.config/go/env; do
  [ -f "$f" ] || continue
  case "$f" in /etc/apt/apt.conf.d/*) [ -e "$rootfs$f" ] && continue ;; esac
  mkdir -p "$rootfs$(dirname "$f")"
  cp -L "$f" "$rootfs$f"
done
if [ "$mode" = offline ]; then
  # Debian's package servers unreachable: apt's HTTP(S) goes to a closed local port.
  printf 'Acquire::http::Proxy "http://127.0.0.1:9/";\nAcquire::https::Proxy "http://127.0.0.1:9/";\n' \
    >"$rootfs/etc/apt/apt.conf.d/00fresh-check-offline"
fi
mkdir -p "$rootfs$goroot" "$rootfs/usr/lib/node_modules/npm" "$rootfs/root/src/shared/wikiart"
touch "$rootfs/usr/bin/node"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"

# 3. The clone.
git clone -q --no-hardlinks "$src" "$rootfs/root/src/artnet"
git -C "$rootfs/root/src/artnet" checkout -q "$commit"
stamp "cloned $commit into $rootfs/root/src/artnet${shared:+ (../shared/wikiart bound in from $shared)}"

# 4. The README's two commands, in private mount and PID namespaces.
envs=(HOME=/root PATH="$goroot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 TERM=dumb)
[ "$mode" = online ] && envs+=(ARTNET_REQUIRE_DEPS=1)
steps='set -o pipefail
cd /root/src/artnet
run() { local t=$SECONDS; echo "[fresh $(date -u +%H:%M:%S)] \$ $*"; "$@"; local rc=$?; echo "[fresh $(date -u +%H:%M:%S)] $* → rc $rc in $((SECONDS - t)) s"; return $rc; }
run make demo || exit 1
bin/artnet doctor | sed -n "/Optional native/,/GoMLX/p"
[ -n "$DEMO_ONLY" ] && exit 0
run make test'
set +e
unshare --mount --pid --fork --propagation private -- /bin/bash -c '
set -e
r=$1 goroot=$2 node=$3 npmdir=$4 shared=$5
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"; mount --make-rslave "$r/sys"
mount --rbind /dev "$r/dev"; mount --make-rslave "$r/dev"
mount -t tmpfs -o size=2g tmpfs "$r/dev/shm"
mount --bind -o ro "$goroot" "$r$goroot"
mount --bind -o ro "$node" "$r/usr/bin/node"
mount --bind -o ro "$npmdir" "$r/usr/lib/node_modules/npm"
[ -n "$shared" ] && mount --bind -o ro "$shared" "$r/root/src/shared/wikiart"
shift 5
exec chroot "$r" /usr/bin/env -i "$@"
' fresh "$rootfs" "$goroot" "$node" "$npmdir" "$shared" "${envs[@]}" DEMO_ONLY="$demo_only" /bin/bash -c "$steps"
rc=$?
set -e
[ -n "$shared" ] || rmdir "$rootfs/root/src/shared/wikiart" 2>/dev/null || true
if [ $rc -eq 0 ]; then
  stamp "PASS ($mode): make demo${demo_only:- and make test} on a new $suite root in $((SECONDS - t0)) s in all; log $log"
else
  stamp "FAIL ($mode, rc $rc) after $((SECONDS - t0)) s; log $log"
fi
exit $rc
