#!/usr/bin/env bash
# One-time setup of a Debian/Ubuntu machine for Certbridge development:
# the grid tools the interop tests run, then the npm dependencies (which also
# generate both Prisma clients). Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql: the server programs, for the throwaway cluster the tests start where none runs (scripts/test-postgres.sh).
# scitokens-cpp: scitokens-verify / scitokens-test-access, the relying party of HTCondor-CE (test/scitokens.test.ts).
# xrootd-*: a real storage server for the VOMS interop test (test/xrootd.test.ts).
# glewlwyd, sqlite3: the third-party OpenID provider the upstream end-to-end test (test/glewlwyd.test.ts) starts on
# loopback with its own SQLite database. On a machine booted with systemd the package also enables its own service
# (port 4593); the tests do not use it (systemctl disable --now glewlwyd if you do not want it).
# fetch-crl: what sites run to keep the CRL of an exported trust directory fresh (test/fetchCrl.test.ts).
# softhsm2: a PKCS#11 token for the HSM-backed CA tests.
packages=(openssl git globus-proxy-utils voms-clients voms-dev g++ myproxy postgresql postgresql-client chromium openssh-client
  xrootd-server xrootd-server-plugins xrootd-plugins xrootd-voms-plugins xrootd-client glewlwyd sqlite3 scitokens-cpp fetch-crl softhsm2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Node.js: 20.19+ is what engines says and what CI tests on; oidc-provider officially supports 22 LTS
# and prints "Unsupported runtime" on 20 (everything works). Say so once here rather than surprise.
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
  { echo "setup: Node.js $(node --version) is older than 20.19 (package.json engines): install Node.js 20.19+ (22 LTS preferred)." >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' ||
  echo "setup: note: Node.js $(node --version) works and is tested; oidc-provider prefers 22 LTS and will print 'Unsupported runtime' at start." >&2

npm ci
