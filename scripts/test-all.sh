#!/usr/bin/env bash
# All tests: source hygiene, type check, boundary lint, a build from a fresh clone, the production build, the
# browser tests, then every other suite (unit, database on SQLite and PostgreSQL, HTTP
# integration, grid-tool interop, CLI) in one run of Node's test runner.
# Logs stay in the project's ignored tmp/test-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Node.js package.json engines asks for (22 LTS; scripts/setup.sh installs it), before anything else fails obscurely.
node scripts/check-node.mjs

missing=()
for tool in openssl grid-proxy-init grid-proxy-info voms-verify voms-proxy-info2 g++ chromium psql git xrootd xrdcp perl glewlwyd scitokens-test-access unshare fetch-crl softhsm2-util oidc-agent oidc-gen oidc-token myproxy-logon; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "test-all: missing ${missing[*]}: install with" >&2
  echo "  sudo bash scripts/setup.sh   (globus-proxy-utils voms-clients voms-dev g++ myproxy openssl chromium postgresql xrootd-* glewlwyd scitokens-cpp fetch-crl softhsm2 oidc-agent-cli)" >&2
  exit 1
fi

export CERTBRIDGE_TEST_LOG_DIR="$PWD/tmp/test-logs"
mkdir -p "$CERTBRIDGE_TEST_LOG_DIR"

echo "== source hygiene: no file imports or reads another checkout by absolute path"
node --import tsx scripts/check-paths.ts
echo "== type check"
npx tsc --noEmit -p .
echo "== lint: boundaries between the parts (eslint.config.mjs)"
npm run --silent lint
echo "== a fresh clone installs and builds on its own"
bash scripts/clone-build.sh >"$CERTBRIDGE_TEST_LOG_DIR/clone-build.log" 2>&1 || { tail -n 60 "$CERTBRIDGE_TEST_LOG_DIR/clone-build.log"; exit 1; }
tail -n 1 "$CERTBRIDGE_TEST_LOG_DIR/clone-build.log"
echo "== build (the portal tests run the production server entry)"
NEXT_TELEMETRY_DISABLED=1 npx next build >"$CERTBRIDGE_TEST_LOG_DIR/next-build.log" 2>&1 || { cat "$CERTBRIDGE_TEST_LOG_DIR/next-build.log"; exit 1; }
echo "== browser tests (Playwright, Debian's Chromium; screenshots in test-results/)"
npx playwright test
echo "== PostgreSQL for the database suites"
eval "$(bash scripts/test-postgres.sh start)"
trap 'bash scripts/test-postgres.sh stop "${CERTBRIDGE_TEST_POSTGRES_DIR:-}"' EXIT
echo "== tests"
node --import tsx --test --test-concurrency=2 --test-timeout=300000 test/*.test.ts
