#!/usr/bin/env bash
# Clone this repository's HEAD into a fresh temporary directory, install with `npm ci` and build
# there (`tsc`, then `next build`, which type-checks again), as a newcomer would. As root, the
# original checkout is hidden under an empty tmpfs in a private mount namespace while the clone
# builds, so a file that reaches into it by absolute path fails here rather than on someone
# else's machine. The clone is removed afterwards.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/certbridge-clone-XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone -q --no-hardlinks "$src" "$work/certbridge"
cd "$work/certbridge"
echo "clone-build: HEAD $(git rev-parse --short HEAD) in $work/certbridge"

# Native addons compile against the running Node.js's own headers, whatever nodedir an .npmrc names.
. "$src/scripts/node-headers.sh"
headers=$(running_node_headers)
build="${headers:+npm_config_nodedir='$headers' }"'npm ci --no-audit --no-fund --prefer-offline && npx tsc --noEmit -p . && NEXT_TELEMETRY_DISABLED=1 npx next build'
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
  echo "clone-build: the original checkout $src is hidden while the clone builds"
  unshare -m bash -c "mount -t tmpfs -o size=1m,mode=0555 certbridge-hidden '$src' && $build"
else
  echo "clone-build: not root (or no mount namespaces): building the clone beside the original checkout"
  bash -c "$build"
fi
echo "clone-build: a fresh clone installs, type-checks and builds ($(du -sh .next | cut -f1) of build output)"
