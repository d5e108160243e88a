#!/usr/bin/env bash
# Installs what the end-to-end and webview tests need (MACHINE-NOTES, "A real VS Code"): Debian's
# Chromium (driven by playwright-core) and code-server 4.100.3 (a real VS Code workbench in the
# browser, Node 20) into the ignored folder .cache/code-server. Idempotent: each step is skipped when
# its result is already there, so a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.100.3
PREFIX=.cache/code-server

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/rg ] || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-e2e: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

bin="$PREFIX/node_modules/code-server/out/node/entry.js"
installed=""
[ -f "$PREFIX/node_modules/code-server/package.json" ] && installed=$(node -p "require('./$PREFIX/node_modules/code-server/package.json').version")
if [ -f "$bin" ] && [ "$installed" = "$CODE_SERVER_VERSION" ]; then
  echo "setup-e2e: code-server $CODE_SERVER_VERSION already installed in $PREFIX"
  exit 0
fi

# @vscode/ripgrep (a code-server dependency) downloads rg in its postinstall; seed its cache with
# Debian's rg so that no download is tried (this machine reaches only npm and Debian).
for v in 1.15.11 1.15.13 1.15.14; do
  d=/tmp/vscode-ripgrep-cache-$v
  mkdir -p "$d"
  [ -f "$d/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" ] \
    || tar czf "$d/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C /usr/bin rg
done

mkdir -p "$PREFIX"
# Its own package.json keeps npm from walking up into the project's.
[ -f "$PREFIX/package.json" ] || echo '{ "name": "nuggets-e2e-code-server", "private": true }' > "$PREFIX/package.json"
echo "setup-e2e: installing code-server@$CODE_SERVER_VERSION into $PREFIX (about a minute)"
npm_config_yes=true npm_config_unsafe_perm=true \
  npm install --prefix "$PREFIX" "code-server@$CODE_SERVER_VERSION" --foreground-scripts --no-audit --no-fund --loglevel=error
[ -f "$bin" ] || { echo "setup-e2e: code-server did not install ($bin missing)" >&2; exit 1; }
echo "setup-e2e: code-server $CODE_SERVER_VERSION ready"
