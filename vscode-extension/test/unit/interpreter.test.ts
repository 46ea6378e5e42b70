import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkLivefixInstalled, resolveInterpreter, runProcess } from '../../src/interpreter';

test('the livefix.python setting wins over the Python extension', async () => {
  const query = async () => '/from/extension/python';
  assert.deepEqual(await resolveInterpreter('/from/setting/python', query), { command: '/from/setting/python', source: 'setting' });
});

test("the Python extension's interpreter is used when the setting is empty", async () => {
  let asked: string | undefined;
  const query = async (resource?: string) => ((asked = resource), '/venv/bin/python');
  assert.deepEqual(await resolveInterpreter('', query, '/work/app'), { command: '/venv/bin/python', source: 'python extension' });
  assert.equal(asked, '/work/app');
});

test('python3 when there is no Python extension, or it fails or has no interpreter', async () => {
  const expected = { command: 'python3', source: 'default' };
  assert.deepEqual(await resolveInterpreter('', undefined), expected);
  assert.deepEqual(await resolveInterpreter('', async () => undefined), expected);
  assert.deepEqual(await resolveInterpreter('', async () => { throw new Error('api changed'); }), expected);
});

// Real interpreters: fake "python" scripts that behave like one with and without livefix.
function fakePython(dir: string, name: string, script: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

test('an interpreter without livefix gets the command that installs the bundled livefix, or what to do without one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'livefix-interp-'));
  try {
    const python = fakePython(dir, 'python', 'echo "ModuleNotFoundError: No module named \'livefix\'" >&2; exit 1');
    const install = `${python} -m pip install --no-index --find-links /ext/bundled/python/wheels livefix==0.1.0`;
    assert.equal(
      await checkLivefixInstalled({ command: python, source: 'setting' }, runProcess, install),
      `livefix is not installed in ${python} (from setting). Install it with: ${install}, ` +
        `or clear "livefix.python" to use the extension's own environment (ModuleNotFoundError: No module named 'livefix')`,
    );
    assert.equal(
      await checkLivefixInstalled({ command: python, source: 'setting' }, runProcess),
      `livefix is not installed in ${python} (from setting). Install livefix into it (pip install a livefix wheel or checkout), ` +
        `or clear "livefix.python" to use the extension's own environment (ModuleNotFoundError: No module named 'livefix')`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an interpreter with livefix passes the check, and the check imports both entry points', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'livefix-interp-'));
  try {
    const python = fakePython(dir, 'python', `[ "$2" = "import livefix.adapter, livefix.lsp" ] && exit 0; exit 3`);
    assert.equal(await checkLivefixInstalled({ command: python, source: 'default' }, runProcess), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing interpreter says it cannot run it and which setting to change', async () => {
  const message = await checkLivefixInstalled({ command: '/nonexistent/python9', source: 'setting' }, runProcess);
  assert.match(message ?? '', /^livefix: cannot run the Python interpreter "\/nonexistent\/python9" \(from setting\): .*ENOENT.*Set "livefix.python"/);
});
