#!/usr/bin/env bash
# PostgreSQL for the test run.
#
#   eval "$(bash scripts/test-postgres.sh start)"   # prints export lines; starts a cluster if needed
#   bash scripts/test-postgres.sh stop "$CERTBRIDGE_TEST_POSTGRES_DIR"
#
# A server that answers at CERTBRIDGE_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres)
# is used as it is. Otherwise a throwaway cluster is made from Debian's `postgresql` package
# (scripts/setup.sh installs it): initdb in a temporary directory (as the unprivileged `postgres`
# user when run as root, since PostgreSQL refuses to run as root), trust authentication, listening
# on 127.0.0.1 only, on a free port, with its socket in that directory; `stop` removes it again.
# The PostgreSQL suites are never skipped: if neither works, this fails and so does `npm test`.
set -euo pipefail

say() { echo "test-postgres: $*" >&2; }

# Debian keeps the server programs out of PATH, one directory per major version: take the newest.
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
  say "no PostgreSQL server programs (initdb, pg_ctl): run 'sudo bash scripts/setup.sh' (Debian package postgresql)"
  exit 1
}

# Run a command as the cluster's owner: ourselves, or `postgres` (else `nobody`) when we are root.
owner() { if [ "$(id -u)" -eq 0 ]; then id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody; else id -un; fi; }
as_owner() {
  local who; who=$(owner)
  if [ "$(id -un)" = "$who" ]; then "$@"; else runuser -u "$who" -- "$@"; fi
}

answers() { # URL: does a server accept a query there?
  PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

start() {
  local url="${CERTBRIDGE_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/postgres}"
  if answers "$url"; then
    say "using the PostgreSQL server at ${url%%\?*}"
    echo "export CERTBRIDGE_TEST_POSTGRES='$url'"
    return
  fi
  local bin dir port
  bin=$(pg_bin)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/certbridge-pg-XXXXXX")
  chmod 0755 "$dir"
  mkdir -p "$dir/data" "$dir/run"
  [ "$(id -u)" -ne 0 ] || chown -R "$(owner)" "$dir"
  port=$(node -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  say "no server answers at ${url%%\?*}: starting a throwaway cluster ($("$bin/postgres" --version | awk '{print $3}')) on 127.0.0.1:$port in $dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
  # fsync off: the cluster is thrown away after the run. Enough connections for two test files at once.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c fsync=off -c full_page_writes=off -c max_connections=300" start >/dev/null \
    || { cat "$dir/postgres.log" >&2; rm -rf "$dir"; exit 1; }
  echo "export CERTBRIDGE_TEST_POSTGRES='postgresql://postgres@127.0.0.1:$port/postgres'"
  echo "export CERTBRIDGE_TEST_POSTGRES_DIR='$dir'"
}

stop() {
  local dir="${1:-}"
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  if [ -n "${CERTBRIDGE_TEST_LOG_DIR:-}" ] && [ -f "$dir/postgres.log" ]; then cp "$dir/postgres.log" "$CERTBRIDGE_TEST_LOG_DIR/postgres.log" || true; fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
