import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, languageServerChanged, readSettings } from '../../src/settings';

test('unset settings give the defaults and no problems', () => {
  assert.deepEqual(readSettings(() => undefined), { settings: DEFAULT_SETTINGS, problems: [] });
});

test('valid settings are taken as given (python trimmed)', () => {
  const values: Record<string, unknown> = { python: ' /opt/py/bin/python ', applyMode: 'onSave', 'languageServer.enabled': false };
  const { settings, problems } = readSettings((key) => values[key]);
  assert.deepEqual(settings, { python: '/opt/py/bin/python', applyMode: 'onSave', languageServer: false, canary: null });
  assert.deepEqual(problems, []);
});

test('bad values are reported and replaced by defaults', () => {
  const values: Record<string, unknown> = { python: 3, applyMode: 'always', 'languageServer.enabled': 'yes' };
  const { settings, problems } = readSettings((key) => values[key]);
  assert.deepEqual(settings, DEFAULT_SETTINGS);
  assert.equal(problems.length, 3);
  assert.match(problems[1], /applyMode must be one of manual, onSave, never, not "always"/);
});

test('the language server restarts for another interpreter or when switched, not for applyMode', () => {
  const base = { python: '/a/python', applyMode: 'manual' as const, languageServer: true, canary: null };
  assert.equal(languageServerChanged(base, { ...base, applyMode: 'onSave' }), false);
  assert.equal(languageServerChanged(base, { ...base, python: '/b/python' }), true);
  assert.equal(languageServerChanged(base, { ...base, languageServer: false }), true);
});

test('livefix.canary: an object of canary terms, or null; a bad one is reported and not sent', () => {
  const terms = { window: 30, maxErrorRate: 0.01 };
  assert.deepEqual(readSettings((key) => (key === 'canary' ? terms : undefined)).settings.canary, terms);
  assert.equal(readSettings((key) => (key === 'canary' ? null : undefined)).settings.canary, null);
  const bad = readSettings((key) => (key === 'canary' ? { window: -1 } : undefined));
  assert.equal(bad.settings.canary, null);
  assert.match(bad.problems[0], /livefix.canary: window must be seconds/);
});
