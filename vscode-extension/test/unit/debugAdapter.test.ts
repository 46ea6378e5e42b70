import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeAdapter, resolveConfiguration } from '../../src/debugAdapter';

test('a launch starts python -m livefix.adapter over stdio', () => {
  assert.deepEqual(describeAdapter({ request: 'launch', program: '/app/main.py' }, '/venv/bin/python'), {
    kind: 'executable',
    command: '/venv/bin/python',
    args: ['-m', 'livefix.adapter'],
  });
});

test("a child process session goes back to the parent's adapter over TCP", () => {
  const child = { request: 'attach', subProcessId: 4242, connect: { host: '127.0.0.1', port: 53111 } };
  assert.deepEqual(describeAdapter(child, 'python3'), { kind: 'server', host: '127.0.0.1', port: 53111 });
});

test('a user attach (connect, no subProcessId) still goes through the livefix adapter', () => {
  const attach = { request: 'attach', connect: { host: 'localhost', port: 5678 } };
  assert.equal(describeAdapter(attach, 'python3').kind, 'executable');
});

test("F5 without launch.json debugs the current file on the developer's interpreter", () => {
  const resolved = resolveConfiguration({}, '/venv/bin/python', '/app/main.py');
  assert.deepEqual(resolved, {
    configuration: {
      type: 'livefix',
      name: 'Python (livefix): current file',
      request: 'launch',
      program: '/app/main.py',
      python: '/venv/bin/python',
      console: 'integratedTerminal',
    },
  });
});

test("a configuration's own python and console are kept", () => {
  const resolved = resolveConfiguration(
    { type: 'livefix', name: 'x', request: 'launch', module: 'shop', python: '/other/python', console: 'internalConsole' },
    '/venv/bin/python',
    undefined,
  );
  assert.ok('configuration' in resolved);
  assert.equal(resolved.configuration.python, '/other/python');
  assert.equal(resolved.configuration.console, 'internalConsole');
});

test('nothing to debug and bad livefix options are refused with the reason', () => {
  assert.deepEqual(resolveConfiguration({}, 'python3', undefined), {
    error: 'livefix: open a Python file to debug, or add a "livefix" configuration to launch.json.',
  });
  const bad = resolveConfiguration({ type: 'livefix', name: 'x', request: 'launch', program: 'a.py', livefix: { approval: 'sometimes' } }, 'python3', undefined);
  assert.deepEqual(bad, { error: 'livefix: "livefix.approval" must be "never", "risky" or "always", not "sometimes".' });
  const notObject = resolveConfiguration({ type: 'livefix', name: 'x', request: 'attach', livefix: 'risky' }, 'python3', undefined);
  assert.ok('error' in notObject && notObject.error.includes('must be an object'));
});
