#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine and runs them all.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

# 1. The main environment (Python 3.11 on these machines): livefix installed as a user would.
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q ".[test]"
# Debian's Neovim, for tests/lsp/test_neovim.py (the documented Neovim configuration, run
# headless). The test installs it too when missing; here it stays out of the test's timeout.
if ! command -v nvim >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends neovim >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends neovim >/dev/null; } \
    || echo "could not install neovim: tests/lsp/test_neovim.py will try again"
fi
# Debian's redis-server, which the Celery fleet tests start and stop themselves (they skip,
# saying why, when it cannot be installed).
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1; } \
    || echo "could not install redis-server: the Celery fleet tests will be skipped"
fi
status=0
.venv/bin/python -m pytest -p no:cacheprovider -rs "$@" tests || status=$?

# 2. The engine on every other supported interpreter pyenv provides (3.10 .. 3.13).
for version in 3.10 3.12 3.13; do
  interp=""
  if command -v pyenv >/dev/null 2>&1; then
    full=$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
    if [ -n "$full" ]; then interp="$(pyenv root)/versions/$full/bin/python"; fi
  fi
  if [ -z "$interp" ] || [ ! -x "$interp" ]; then
    echo "SKIPPED: engine tests on Python $version: no such interpreter from pyenv on this machine"
    continue
  fi
  venv=".venv-$version"
  if [ ! -x "$venv/bin/python" ]; then "$interp" -m venv "$venv"; fi
  "$venv/bin/python" -m pip install -q pytest pytest-timeout >/dev/null
  echo "== engine tests on $("$venv/bin/python" --version) =="
  # The engine is standard-library only, so it runs straight from the source tree.
  PYTHONPATH="$ROOT" "$venv/bin/python" -m pytest -p no:cacheprovider -rs -c /dev/null --rootdir "$ROOT" \
    -o timeout=300 tests/engine || status=$?
done

# 3. The VS Code extension (unit tests and the code-server end-to-end test).
if [ -x vscode-extension/scripts/test.sh ] || [ -f vscode-extension/scripts/test.sh ]; then
  bash vscode-extension/scripts/test.sh || status=$?
fi
exit $status
