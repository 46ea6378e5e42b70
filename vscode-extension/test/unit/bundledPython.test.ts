/**
 * The extension's own Python environment: which interpreter it is made from, the messages
 * when it cannot be made, and, against the real bundle (bundled/python, made by
 * `npm run bundle:python` or `vsce package`) and real interpreters, that it is made once,
 * offline, reused, repaired, shared by two windows starting at once, and that the
 * developer's interpreter is left as it was.
 *
 * Without a bundle the real-bundle tests are skipped, unless LIVEFIX_REQUIRE_BUNDLE=1 (test.sh
 * sets it after packaging) makes that a failure. LIVEFIX_BUNDLE_PYTHONS (space-separated
 * interpreters; test.sh passes the pyenv 3.10-3.13 it finds) adds one environment per version.
 */

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { BundledPython, currentTarget, hostTarget, MARKER, readManifest, venvPython, type BundledPythonOptions } from '../../src/bundledPython';
import { resolveRuntime, runProcess, type ProcessResult, type RunProcess } from '../../src/interpreter';

const extensionRoot = resolve(__dirname, '..', '..', '..');
const bundle = join(extensionRoot, 'bundled', 'python');
const hasBundle = existsSync(join(bundle, 'manifest.json'));
const requireBundle = process.env.LIVEFIX_REQUIRE_BUNDLE === '1';
const realBundle = { skip: !hasBundle && !requireBundle ? 'no bundled/python (run npm run bundle:python)' : false };

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'livefix-bundle-'));
}

function options(root: string, storage: string, overrides: Partial<BundledPythonOptions> = {}) {
  const logs: string[] = [];
  const progress: string[] = [];
  const value: BundledPythonOptions = {
    root,
    storage,
    target: hostTarget(),
    platform: process.platform,
    run: runProcess,
    log: (line) => logs.push(line),
    progress: (title, task) => (progress.push(title), task()),
    ...overrides,
  };
  return { value, logs, progress };
}

/** A fake bundle (manifest only) for the tests that never reach pip. */
function fakeBundle(dir: string, manifest: object): string {
  const root = join(dir, 'bundle');
  mkdirSync(join(root, 'wheels'), { recursive: true });
  writeFileSync(join(root, 'manifest.json'), JSON.stringify({ livefix: '0.1.0', target: 'linux-x64', pythons: ['3.10', '3.11', '3.12', '3.13'], pip: 'pip.whl', wheels: [], digest: 'ab'.repeat(32), ...manifest }));
  return root;
}

/** A RunProcess that answers the interpreter probe per command, like real interpreters would. */
function probes(answers: Record<string, { implementation?: string; version: string; venv?: boolean } | 'missing'>): RunProcess & { calls: string[] } {
  const calls: string[] = [];
  const run = async (command: string): Promise<ProcessResult> => {
    calls.push(command);
    const answer = answers[command];
    if (answer === undefined || answer === 'missing') return { code: 1, stdout: '', stderr: '', spawnError: `spawn ${command} ENOENT` };
    const probe = { implementation: answer.implementation ?? 'CPython', version: answer.version, executable: `${command}-real`, venv: answer.venv ?? true };
    return { code: 0, stdout: JSON.stringify(probe) + '\n', stderr: '' };
  };
  return Object.assign(run, { calls });
}

test('this machine as a VS Code target name', () => {
  assert.equal(currentTarget('linux', 'x64', '2.36'), 'linux-x64');
  assert.equal(currentTarget('linux', 'arm64', '2.31'), 'linux-arm64');
  assert.equal(currentTarget('linux', 'x64', undefined), 'alpine-x64', 'no glibc: musl, Alpine');
  assert.equal(currentTarget('linux', 'arm', '2.31'), 'linux-armhf');
  assert.equal(currentTarget('darwin', 'arm64', undefined), 'darwin-arm64');
  assert.equal(currentTarget('win32', 'x64', undefined), 'win32-x64');
  assert.match(hostTarget(), /^(linux|alpine|darwin|win32)-(x64|arm64|armhf)$/);
});

test('where a venv keeps its interpreter', () => {
  assert.equal(venvPython('/s/env', 'linux'), '/s/env/bin/python');
  assert.equal(venvPython('C:\\s\\env', 'win32'), 'C:\\s\\env\\Scripts\\python.exe');
});

test('no bundle: says so and names the setting', async () => {
  const dir = scratch();
  try {
    const { value } = options(join(dir, 'nothing'), join(dir, 'storage'));
    const result = await new BundledPython(value).environment('python3');
    assert.ok('error' in result);
    assert.match(result.error, /carries no Python environment .*manifest\.json.*"livefix\.python"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bundle for another platform: names both and what to install, and runs nothing', async () => {
  const dir = scratch();
  try {
    const run = probes({});
    const { value } = options(fakeBundle(dir, { target: 'darwin-arm64' }), join(dir, 'storage'), { target: 'linux-x64', run });
    const result = await new BundledPython(value).environment('python3');
    assert.deepEqual(result, {
      error:
        'livefix: this extension carries its Python environment for darwin-arm64, and this machine is linux-x64. ' +
        'Install the livefix extension built for linux-x64, or set "livefix.python" to an interpreter where livefix is installed.',
    });
    assert.deepEqual(run.calls, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the developer's interpreter is the base when the bundle has wheels for it", async () => {
  const dir = scratch();
  try {
    // Stop right after the choice: the creation fails at once on the fake executable.
    const run = probes({ '/venv/bin/python': { version: '3.12' }, python3: { version: '3.11' } });
    const { value } = options(fakeBundle(dir, { target: 'linux-x64' }), join(dir, 'storage'), { target: 'linux-x64', run });
    const result = await new BundledPython(value).environment('/venv/bin/python');
    assert.deepEqual(run.calls.slice(0, 1), ['/venv/bin/python']);
    assert.ok('error' in result && result.error.includes('with /venv/bin/python-real ('), JSON.stringify(result));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unsupported interpreter falls back to python3, then to python3.13 ... python3.10', async () => {
  const dir = scratch();
  try {
    const run = probes({ '/old/python': { version: '3.9' }, python3: { implementation: 'PyPy', version: '3.10' }, 'python3.13': 'missing', 'python3.12': { version: '3.12', venv: false }, 'python3.11': { version: '3.11' } });
    const { value, logs } = options(fakeBundle(dir, { target: 'linux-x64' }), join(dir, 'storage'), { target: 'linux-x64', run });
    await new BundledPython(value).environment('/old/python');
    assert.deepEqual(run.calls.slice(0, 5), ['/old/python', 'python3', 'python3.13', 'python3.12', 'python3.11']);
    assert.match(logs[0], /^bundled Python: \/old\/python cannot be the base \(\/old\/python is CPython 3\.9; python3 is PyPy 3\.10; python3\.13: not found; python3\.12 \(3\.12\) has no venv module\); using python3\.11/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no usable interpreter at all: one message with what was tried', async () => {
  const dir = scratch();
  try {
    const run = probes({ '/old/python': { version: '3.9' } });
    const { value } = options(fakeBundle(dir, { target: 'linux-x64', pythons: ['3.12', '3.13'] }), join(dir, 'storage'), { target: 'linux-x64', run });
    const result = await new BundledPython(value).environment('/old/python');
    assert.deepEqual(result, {
      error:
        'livefix needs CPython 3.12, 3.13 on this machine to run its adapter and language server, and found none ' +
        '(/old/python is CPython 3.9; python3: not found; python3.13: not found; python3.12: not found; python: not found). ' +
        'Install one or select it in the Python extension, or set "livefix.python" to an interpreter where livefix is installed.',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('livefix.python keeps working as before; without it the tools run in the private environment and programs on the developer\'s interpreter', async () => {
  const dir = scratch();
  try {
    const withLivefix = join(dir, 'python-with-livefix');
    writeFileSync(withLivefix, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const bundled = {
      environment: async (user: string) => ({ python: `/storage/env/bin/python`, base: `${user}-base` }),
      installCommand: async (python: string) => `${python} -m pip install --no-index --find-links /ext/bundled/python/wheels livefix==0.1.0`,
    };
    const fromSetting = await resolveRuntime(withLivefix, undefined, undefined, bundled, runProcess);
    assert.deepEqual(fromSetting, { tools: withLivefix, program: withLivefix, description: `${withLivefix} (livefix.python)` });

    const fromExtension = await resolveRuntime('', async () => '/project/.venv/bin/python', '/project', bundled, runProcess);
    assert.ok(!('error' in fromExtension));
    assert.equal(fromExtension.tools, '/storage/env/bin/python');
    assert.equal(fromExtension.program, '/project/.venv/bin/python');

    const failing = { ...bundled, environment: async () => ({ error: 'livefix needs CPython ...' }) };
    assert.deepEqual(await resolveRuntime('', undefined, undefined, failing, runProcess), { error: 'livefix needs CPython ...' });

    const without = join(dir, 'python-without-livefix');
    writeFileSync(without, '#!/bin/sh\necho "ModuleNotFoundError: No module named \'livefix\'" >&2; exit 1\n', { mode: 0o755 });
    assert.deepEqual(await resolveRuntime(without, undefined, undefined, bundled, runProcess), {
      error:
        `livefix is not installed in ${without} (from setting). Install it with: ${without} -m pip install --no-index --find-links /ext/bundled/python/wheels livefix==0.1.0, ` +
        'or clear "livefix.python" to use the extension\'s own environment (ModuleNotFoundError: No module named \'livefix\')',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// -- the real bundle, real interpreters ---------------------------------------------------------

function python3(): string {
  return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
}

function environments(storage: string): string[] {
  return existsSync(join(storage, 'python')) ? readdirSync(join(storage, 'python')).sort() : [];
}

test('made once on first use, offline, from the bundled wheels; reused by the next window; the base interpreter untouched', realBundle, async () => {
  const dir = scratch();
  try {
    const manifest = await readManifest(bundle);
    assert.ok(manifest, 'bundled/python/manifest.json');
    const base = python3();
    const before = execFileSync(base, ['-m', 'pip', 'list', '--format=freeze'], { encoding: 'utf8' });
    const storage = join(dir, 'storage');
    // No network: pip must never look for an index (a proxy that answers nothing would show).
    const offline = { ...process.env, PIP_INDEX_URL: 'http://127.0.0.1:9/simple', https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9' };
    const run: RunProcess = (command, args, opts) =>
      new Promise((done) => {
        execFile(command, args, { env: offline, timeout: opts?.timeoutMs ?? 30_000 }, (error, stdout, stderr) => {
          const code = (error as { code?: unknown } | null)?.code;
          done({ code: error ? (typeof code === 'number' ? code : 1) : 0, stdout, stderr, spawnError: typeof code === 'string' ? error!.message : undefined });
        });
      });
    const first = options(bundle, storage, { run });
    const bundled = new BundledPython(first.value);
    const [a, b] = await Promise.all([bundled.environment('python3'), bundled.environment('python3')]);
    assert.ok(!('error' in a), JSON.stringify(a) + first.logs.join('\n'));
    assert.deepEqual(a, b);
    assert.equal(first.progress.length, 1, 'one creation, with a progress notification');
    assert.match(first.progress[0], /^livefix: preparing its Python environment \(first use, Python 3\.\d+, offline\)$/);
    const version = execFileSync(base, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).trim();
    assert.deepEqual(environments(storage), [`${manifest.livefix}-${manifest.digest.slice(0, 12)}-py${version}`], 'no temporary folder left');
    assert.equal(a.python, venvPython(join(storage, 'python', environments(storage)[0]), process.platform));
    const marker = JSON.parse(readFileSync(join(storage, 'python', environments(storage)[0], MARKER), 'utf8'));
    assert.equal(marker.digest, manifest.digest);

    // It runs the adapter and the language server from its own site-packages.
    const where = execFileSync(a.python, ['-c', 'import livefix, debugpy, libcst, pygls; print(livefix.__file__); print(debugpy.__file__)'], { encoding: 'utf8' });
    for (const line of where.trim().split('\n')) assert.ok(line.startsWith(join(storage, 'python')), line);
    assert.match(execFileSync(a.python, ['-m', 'livefix.adapter', '--help'], { encoding: 'utf8' }), /livefix's debug adapter/);
    assert.equal(execFileSync(base, ['-m', 'pip', 'list', '--format=freeze'], { encoding: 'utf8' }), before, "the developer's interpreter got nothing");

    // The next window: no progress, the same environment.
    const next = options(bundle, storage);
    assert.deepEqual(await new BundledPython(next.value).environment('python3'), a);
    assert.deepEqual(next.progress, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two windows starting at once make one environment; a broken one is made again; an older bundle\'s is removed', realBundle, async () => {
  const dir = scratch();
  try {
    const storage = join(dir, 'storage');
    mkdirSync(join(storage, 'python', '0.0.9-000000000000-py3.11', 'bin'), { recursive: true });
    const windows = [options(bundle, storage), options(bundle, storage)];
    const results = await Promise.all(windows.map((w) => new BundledPython(w.value).environment('python3')));
    assert.ok(!('error' in results[0]), JSON.stringify(results[0]));
    assert.deepEqual(results[0], results[1]);
    const made = environments(storage);
    assert.equal(made.length, 1, `one environment, the older bundle's removed, no temporary folder: ${made}`);
    const python = (results[0] as { python: string }).python;
    assert.equal(execFileSync(python, ['-c', 'import livefix.lsp; print("ok")'], { encoding: 'utf8' }).trim(), 'ok');

    // Its base interpreter went away (here: the link to it): the next window makes it again.
    rmSync(python);
    symlinkSync(join(dir, 'gone', 'python3'), python);
    const repair = options(bundle, storage);
    assert.deepEqual(await new BundledPython(repair.value).environment('python3'), results[0]);
    assert.equal(repair.progress.length, 1);
    assert.ok(repair.logs.some((line) => line.includes('no longer runs')), repair.logs.join('\n'));
    assert.equal(execFileSync(python, ['-c', 'import livefix.adapter; print("ok")'], { encoding: 'utf8' }).trim(), 'ok');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('wheels that do not install: the reason, nothing half-made left, and the next attempt tries again', realBundle, async () => {
  const dir = scratch();
  try {
    const root = join(dir, 'bundle');
    cpSync(bundle, root, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8'));
    writeFileSync(join(root, 'manifest.json'), JSON.stringify({ ...manifest, livefix: '99.0.0' }));
    const storage = join(dir, 'storage');
    const { value, logs } = options(root, storage);
    const bundled = new BundledPython(value);
    const result = await bundled.environment('python3');
    assert.ok('error' in result);
    assert.match(result.error, /^livefix: could not install the bundled wheels for its Python environment with \S+ \(ERROR: No matching distribution found for livefix==99\.0\.0\)\. The livefix output channel has the details/);
    assert.ok(logs.some((line) => line.includes('install the bundled wheels failed')));
    assert.deepEqual(environments(storage), [], 'no environment and no temporary folder');
    const again = await bundled.environment('python3');
    assert.ok('error' in again, 'a failure is not cached as a success');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the install command for people who set livefix.python uses the bundled wheels', realBundle, async () => {
  const { value } = options(bundle, '/unused');
  const manifest = await readManifest(bundle);
  assert.equal(
    await new BundledPython(value).installCommand('/my/python'),
    `/my/python -m pip install --no-index --find-links ${join(bundle, 'wheels')} livefix==${manifest!.livefix}`,
  );
  const other = options(bundle, '/unused', { target: 'win32-arm64' });
  assert.equal(await new BundledPython(other.value).installCommand('/my/python'), undefined);
});

const extraPythons = (process.env.LIVEFIX_BUNDLE_PYTHONS ?? '').split(/\s+/).filter(Boolean);
test('every supported CPython gets its environment from the same bundle', { skip: realBundle.skip || (extraPythons.length === 0 && 'LIVEFIX_BUNDLE_PYTHONS is empty') }, async () => {
  const dir = scratch();
  try {
    const storage = join(dir, 'storage');
    const manifest = await readManifest(bundle);
    const versions = await Promise.all(
      extraPythons.map(async (interpreter) => {
        const { value, logs } = options(bundle, storage);
        const result = await new BundledPython(value).environment(interpreter);
        assert.ok(!('error' in result), `${interpreter}: ${JSON.stringify(result)}\n${logs.join('\n')}`);
        return execFileSync(result.python, ['-c', 'import sys, livefix.adapter.client, livefix.lsp.server; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).trim();
      }),
    );
    assert.deepEqual(
      environments(storage),
      [...new Set(versions)].sort().map((v) => `${manifest!.livefix}-${manifest!.digest.slice(0, 12)}-py${v}`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
