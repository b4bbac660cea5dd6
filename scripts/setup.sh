#!/usr/bin/env bash
# One-time setup of a Debian/Ubuntu machine for Certbridge development:
# the grid tools the interop tests run, then the npm dependencies (which also
# generate both Prisma clients). Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql: the server programs, for the throwaway cluster the tests start where none runs (scripts/test-postgres.sh).
packages=(openssl git globus-proxy-utils voms-clients voms-dev g++ myproxy postgresql postgresql-client chromium openssh-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Node.js 22.12 or later (an LTS line): oidc-provider supports nothing older and says
# "Unsupported runtime" at every start; pkijs and asn1js want 20.19+ or 22.12+. (The researcher's
# CLI package, packages/proxy-cli, still runs on 20.19.)
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) ? 0 : 1)' ||
  echo "setup: Node.js $(node --version) is older than the supported 22.12 (package.json engines): the portal runs, but oidc-provider does not support it. Install Node.js 22 LTS or later." >&2

npm ci
