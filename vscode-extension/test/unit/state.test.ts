import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LivefixState } from '../../src/state';
import { statusItem } from '../../src/statusBar';
import { changeBody } from './fakes';

const FILE = '/app/shop.py';
const ON_DISK = 'def total(price, quantity):\n    return price\n';
const FIXED = 'def total(price, quantity):\n    return price * quantity\n';
const src = (source: string | null, generation: number) => ({ module: 'shop', path: FILE, qualname: 'total', source, generation });

test('an applied fix not yet in its file counts as unpersisted, and the status bar says so', async () => {
  const state = new LivefixState();
  state.onApplied('launch', changeBody(1, 'r', { action: 'apply', sources: [src(FIXED, 1)] }));
  const pending = await state.unpersisted('launch', async () => ON_DISK);
  assert.deepEqual(pending.map((s) => s.qualname), ['total']);
  assert.deepEqual(statusItem('shop.py', state.generation('launch'), pending), {
    text: '$(zap) gen 1 · 1 unpersisted',
    tooltip: 'livefix: "shop.py" runs generation 1; 1 definition not in its file: shop.total. Click for the history.',
    command: 'livefix.showHistory',
  });
});

test('saving the same text into the file makes it persisted', async () => {
  const state = new LivefixState();
  state.onApplied('launch', changeBody(1, 'r', { action: 'apply', sources: [src(FIXED, 1)] }));
  assert.deepEqual(await state.unpersisted('launch', async () => `import os\n\n${FIXED}`), []);
});

test('rolling back to as-loaded forgets the running version; generations remember what they introduced', async () => {
  const state = new LivefixState();
  state.onApplied('launch', changeBody(1, 'r', { action: 'apply', sources: [src(FIXED, 1)] }));
  state.onApplied('launch', changeBody(2, 'r', { action: 'apply', sources: [src('def total(p, q):\n    return 0\n', 2)] }));
  assert.equal(state.versionBefore('launch', 2, `${FILE}|total`), FIXED);
  state.onApplied('launch', changeBody(0, 'r', { action: 'rollback', sources: [src(null, 0)] }));
  assert.equal(state.generation('launch'), 0);
  assert.deepEqual(await state.unpersisted('launch', async () => ON_DISK), []);
  assert.equal(state.introducedBy('launch', 2)?.[0].generation, 2);
  assert.equal(statusItem('shop.py', 0, [])?.text, '$(zap) gen 0');
  assert.equal(statusItem(undefined, 0, []), undefined);
});

test("a canary's rollback (no applied event) is described as one: the version before the generation runs again", () => {
  const state = new LivefixState();
  const second = 'def total(p, q):\n    return 0\n';
  state.onApplied('launch', changeBody(1, 'r', { action: 'apply', sources: [src(FIXED, 1)] }));
  state.onApplied('launch', changeBody(2, 'r', { action: 'apply', sources: [src(second, 2)] }));
  const body = state.rolledBackBody('launch', 2, 1);
  assert.equal(body.action, 'rollback');
  assert.equal(body.generation, 1);
  assert.deepEqual(body.sources, [src(FIXED, 1)]);
  assert.deepEqual(state.rolledBackBody('launch', 1, 0).sources, [src(null, 0)]);
  assert.deepEqual(state.rolledBackBody('launch', 7, 6).sources, [], 'a generation this window did not see: nothing known');
});
