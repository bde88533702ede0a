#!/usr/bin/env bash
# Installs the ngrok agent the tunnel tests run offline (ngrok 2.3.41, from the
# npm package @expo/ngrok-bin-linux-x64) into a cache directory, unless it is
# already there, and prints the binary's path on stdout (progress goes to stderr).
#
#   CONFLICTKIT_NGROK_CACHE  the cache directory (default $HOME/.cache/conflictkit/ngrok)
#
# Usage: export CONFLICTKIT_NGROK_BIN="$(./scripts/install-ngrok.sh)"
#
# The agent is never run here: the tests run it only inside a network namespace
# that has nothing but loopback.
set -euo pipefail

package="@expo/ngrok-bin-linux-x64"
version="2.3.41"
cache="${CONFLICTKIT_NGROK_CACHE:-$HOME/.cache/conflictkit/ngrok}"
pkg_dir="$cache/node_modules/$package"
bin="$pkg_dir/ngrok"

installed_version() {
  [ -f "$pkg_dir/package.json" ] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg_dir/package.json" 2>/dev/null || true
}

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "install-ngrok: $package is built for Linux x86_64 only, not $(uname -s)-$(uname -m)" >&2
  exit 1
fi

if [ ! -x "$bin" ] || [ "$(installed_version)" != "$version" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-ngrok: npm is needed to install $package@$version (apt-get install npm)" >&2
    exit 1
  fi
  echo "install-ngrok: installing $package@$version into $cache" >&2
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "$package@$version" >&2
  if [ ! -x "$bin" ]; then
    echo "install-ngrok: $package@$version installed, but $bin is missing or not executable" >&2
    exit 1
  fi
fi

echo "$bin"
