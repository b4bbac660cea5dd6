#!/usr/bin/env bash
# One-time setup of a Debian/Ubuntu machine for Certbridge development:
# the grid tools the interop tests run, then the npm dependencies (which also
# generate both Prisma clients). Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql: the server programs, for the throwaway cluster the tests start where none runs (scripts/test-postgres.sh).
# scitokens-cpp: scitokens-verify / scitokens-test-access, the relying party of HTCondor-CE (test/scitokens.test.ts).
packages=(openssl git globus-proxy-utils voms-clients voms-dev g++ myproxy postgresql postgresql-client chromium openssh-client scitokens-cpp)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

npm ci
