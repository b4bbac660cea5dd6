# Sourced by scripts/setup.sh and scripts/clone-build.sh, which run `npm ci`. node-gyp compiles the native
# addons (better-sqlite3, pkcs11js, ssh2, cpu-features) against `nodedir`, or else downloads headers from
# nodejs.org, which is unreachable where only the npm registry is. The official builds (what setup.sh
# installs) and Debian's nodejs both ship them in <prefix>/include/node, but node-gyp looks there only
# when told to.

# The version (22.23.3) of the Node.js headers under prefix $1, or nothing.
node_headers_version() {
  sed -n 's/^#define NODE_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9][0-9]*\)$/\2/p' "$1/include/node/node_version.h" 2>/dev/null | paste -sd. -
}

# The prefix of the running Node.js when it holds the headers of this very version, or nothing.
running_node_headers() {
  local dir
  dir=$(node -p 'require("path").resolve(process.execPath, "../..")')
  if [ "$(node_headers_version "$dir")" = "$(node -p process.versions.node)" ]; then echo "$dir"; fi
}

# `npm ci` with nodedir set (above any .npmrc, for this command only) to the running Node.js's own headers.
npm_ci_with_own_headers() {
  local dir
  dir=$(running_node_headers)
  if [ -n "$dir" ]; then npm_config_nodedir="$dir" npm ci "$@"; else npm ci "$@"; fi
}
