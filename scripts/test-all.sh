#!/usr/bin/env bash
# All tests: type check, production build, the browser tests, then every
# other suite (unit, database on SQLite and PostgreSQL, HTTP integration,
# grid-tool interop, CLI) in one run of Node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in openssl grid-proxy-init grid-proxy-info voms-verify voms-proxy-info2 g++ chromium xrootd xrdcp perl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "test-all: missing ${missing[*]}: install with" >&2
  echo "  sudo bash scripts/setup.sh   (globus-proxy-utils voms-clients voms-dev g++ myproxy openssl chromium xrootd-*)" >&2
  exit 1
fi

echo "== type check"
npx tsc --noEmit -p .
echo "== build (the portal tests run the production server entry)"
NEXT_TELEMETRY_DISABLED=1 npx next build >/tmp/certbridge-next-build.log 2>&1 || { cat /tmp/certbridge-next-build.log; exit 1; }
echo "== browser tests (Playwright, Debian's Chromium; screenshots in test-results/)"
npx playwright test
echo "== tests"
node --import tsx --test --test-concurrency=2 --test-timeout=300000 test/*.test.ts
