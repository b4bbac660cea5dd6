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
# myproxy-server: only for bench/myproxy.ts, which runs a real MyProxy server beside the portal's listener. On a machine booted
# with systemd the package enables its own service on 7512 (systemctl disable --now myproxy-server if the portal should have it).
# hey: the external HTTP load generator bench/throughput.ts drives /getproxy with.
# oidc-agent-cli: oidc-agent, oidc-gen, oidc-token, the token client grid users run (test/oidcAgent.test.ts).
# curl, ca-certificates: fetch Node.js from the npm registry (below); make, python3, g++: node-gyp, for native addons.
packages=(curl ca-certificates make python3 openssl git globus-proxy-utils voms-clients voms-dev g++ myproxy postgresql postgresql-client chromium openssh-client
  xrootd-server xrootd-server-plugins xrootd-plugins xrootd-voms-plugins xrootd-client glewlwyd sqlite3 scitokens-cpp fetch-crl softhsm2
  oidc-agent-cli myproxy-server hey)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]})); then
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Node.js 22 LTS: what package.json engines asks for (oidc-provider 9 supports only LTS releases from 22
# "Jod" on and prints "Unsupported runtime" on others; pkijs and asn1js need 22.12+, ESLint 22.13+). Where
# `node` is missing or older (Debian and Ubuntu ship 18 or 20), install it into /usr/local, which comes before
# /usr/bin on the default PATH: the official Linux build as the npm registry publishes it (node-linux-<arch>,
# with the C headers that native addons compile against) and npm itself, fetched from the npm registry with
# the integrity pinned here and checked, so nothing comes from nodejs.org. CERTBRIDGE_NODE_PREFIX picks
# another prefix (then put its bin/ first on PATH yourself).
node_version=22.23.3
npm_version=11.19.1
npm_integrity=sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==
node_prefix=${CERTBRIDGE_NODE_PREFIX:-/usr/local}

install_node() {
  local arch node_integrity registry
  case "$(uname -m)" in
    x86_64) arch=x64 node_integrity=sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng== ;;
    aarch64) arch=arm64 node_integrity=sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA== ;;
    *) echo "setup: no pinned Node.js $node_version build for $(uname -m): install Node.js 22 LTS yourself" >&2; exit 1 ;;
  esac
  registry=$(npm config get registry 2>/dev/null || true)
  registry=${registry:-https://registry.npmjs.org/}
  registry=${registry%/}
  node_tmp=$(mktemp -d)
  trap 'rm -rf "${node_tmp:-}"' EXIT
  # name version integrity: the registry's tarball of that version, refused unless its sha512 is the pinned one.
  fetch_checked() {
    curl -fsSL --retry 3 -o "$node_tmp/$1.tgz" "$registry/$1/-/$1-$2.tgz"
    [ "sha512-$(openssl dgst -sha512 -binary "$node_tmp/$1.tgz" | base64 -w0)" = "$3" ] ||
      { echo "setup: $registry/$1/-/$1-$2.tgz does not have the pinned integrity: not installing it" >&2; exit 1; }
    mkdir "$node_tmp/$1" && tar -xzf "$node_tmp/$1.tgz" -C "$node_tmp/$1" --strip-components=1 --no-same-owner
  }
  echo "setup: installing Node.js $node_version (node-linux-$arch) and npm $npm_version into $node_prefix from $registry"
  fetch_checked "node-linux-$arch" "$node_version" "$node_integrity"
  fetch_checked npm "$npm_version" "$npm_integrity"
  $sudo mkdir -p "$node_prefix/bin" "$node_prefix/include" "$node_prefix/lib/node_modules" "$node_prefix/share/man/man1"
  # Replaced by rename, so processes running the previous files keep theirs.
  $sudo rm -rf "$node_prefix/include/node.new" "$node_prefix/include/node.old" "$node_prefix/lib/node_modules/npm.new" "$node_prefix/lib/node_modules/npm.old"
  $sudo cp -R "$node_tmp/node-linux-$arch/include/node" "$node_prefix/include/node.new"
  $sudo cp -R "$node_tmp/npm" "$node_prefix/lib/node_modules/npm.new"
  $sudo cp "$node_tmp/node-linux-$arch/bin/node" "$node_prefix/bin/node.new"
  $sudo cp "$node_tmp/node-linux-$arch/share/man/man1/node.1" "$node_prefix/share/man/man1/node.1"
  { [ ! -e "$node_prefix/include/node" ] || $sudo mv "$node_prefix/include/node" "$node_prefix/include/node.old"; } &&
    $sudo mv "$node_prefix/include/node.new" "$node_prefix/include/node"
  { [ ! -e "$node_prefix/lib/node_modules/npm" ] || $sudo mv "$node_prefix/lib/node_modules/npm" "$node_prefix/lib/node_modules/npm.old"; } &&
    $sudo mv "$node_prefix/lib/node_modules/npm.new" "$node_prefix/lib/node_modules/npm"
  $sudo mv -f "$node_prefix/bin/node.new" "$node_prefix/bin/node"
  $sudo ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$node_prefix/bin/npm"
  $sudo ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$node_prefix/bin/npx"
  $sudo rm -rf "$node_prefix/include/node.old" "$node_prefix/lib/node_modules/npm.old" "$node_tmp"
  trap - EXIT
}

if ! { command -v node >/dev/null && node scripts/check-node.mjs 2>/dev/null; }; then
  "$node_prefix/bin/node" scripts/check-node.mjs 2>/dev/null || install_node
  hash -r
  if [ "$(command -v node || true)" != "$node_prefix/bin/node" ]; then
    echo "setup: note: put $node_prefix/bin first on PATH (\`node\` there is now $(command -v node || echo missing)), as the rest of this setup does" >&2
    export PATH="$node_prefix/bin:$PATH"
    hash -r
  fi
fi
node scripts/check-node.mjs
echo "setup: Node.js $(node --version) ($(command -v node)), npm $(npm --version) ($(command -v npm))"

# Native addons compile against the headers of the Node.js that runs (scripts/node-headers.sh). An npm nodedir
# setting that names another Node.js's headers would build addons that fail to load: this install overrides it,
# a later plain `npm ci` would not, so say so.
. scripts/node-headers.sh
configured_nodedir=$(npm config get nodedir 2>/dev/null || true)
own_headers=$(running_node_headers)
if [ -n "$configured_nodedir" ] && [ "$configured_nodedir" != "undefined" ] && [ "$configured_nodedir" != "$own_headers" ] &&
  [ "$(node_headers_version "$configured_nodedir")" != "$(node -p process.versions.node)" ]; then
  echo "setup: note: npm config nodedir=$configured_nodedir holds the headers of another Node.js ($(node_headers_version "$configured_nodedir")); a plain npm ci would build native addons that do not load. Fix: npm config set nodedir ${own_headers:-DIR}" >&2
fi

npm_ci_with_own_headers
