#!/usr/bin/env bash
# Sets up livefix on a fresh machine and runs the bundled demo: a threaded service fixed live.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q .
.venv/bin/python demo/run_demo.py
