import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canaryFromAnswers, checkCanary, describeCanary, formatRate, parseErrorRate, validateErrorRate, validateWindow, withCanary } from '../../src/canary';

test('the canary setting: null or unset is no canary; valid terms are taken as given', () => {
  assert.deepEqual(checkCanary(undefined), { canary: null });
  assert.deepEqual(checkCanary(null), { canary: null });
  const terms = { before: 5, window: 30, maxErrorRate: 0.01, maxP99Ms: 200, minCalls: 10, maxSlowdown: 2, compare: false };
  assert.deepEqual(checkCanary(terms), { canary: terms });
});

test('a bad canary setting is reported key by key and no canary is sent', () => {
  const { canary, problem } = checkCanary({ window: 0, maxErrorRate: 5, windw: 3, minCalls: 1.5 });
  assert.equal(canary, null);
  assert.match(problem!, /window must be seconds \(more than 0\), not 0/);
  assert.match(problem!, /maxErrorRate must be a rate from 0 to 1, not 5/);
  assert.match(problem!, /unknown key "windw"/);
  assert.match(problem!, /minCalls must be a whole number of calls, not 1.5/);
  assert.match(checkCanary('30s').problem!, /must be an object/);
  assert.match(checkCanary([]).problem!, /must be an object/);
});

test('the canary goes with apply and reload that have none, never with a rollback', () => {
  const canary = { window: 10 };
  assert.deepEqual(withCanary('livefix/apply', { changes: [] }, canary), { changes: [], canary });
  assert.deepEqual(withCanary('livefix/reload', {}, canary), { canary });
  assert.deepEqual(withCanary('livefix/rollback', {}, canary), {});
  assert.deepEqual(withCanary('livefix/apply', { changes: [], canary: { window: 60 } }, canary), { changes: [], canary: { window: 60 } });
  assert.deepEqual(withCanary('livefix/apply', { changes: [] }, null), { changes: [] });
});

test('the questions of "Apply with Canary…": window in seconds, error rate as a percentage or a fraction', () => {
  assert.equal(validateWindow('30'), undefined);
  assert.equal(validateWindow(' 2.5 '), undefined);
  for (const bad of ['', '0', '-3', 'soon']) assert.match(validateWindow(bad)!, /number of seconds/);
  assert.equal(parseErrorRate('1%'), 0.01);
  assert.equal(parseErrorRate(' 0.5 % '), 0.005);
  assert.equal(parseErrorRate('0.02'), 0.02);
  assert.equal(parseErrorRate(''), null);
  assert.equal(parseErrorRate('150%'), undefined);
  assert.equal(parseErrorRate('lots'), undefined);
  assert.equal(validateErrorRate('2'), validateErrorRate('x'));
  assert.match(validateErrorRate('2')!, /percentage/);
  assert.equal(formatRate(0.01), '1%');
  assert.equal(formatRate(0.005), '0.5%');
});

test("the answers override the setting's window and error rate and keep its other terms", () => {
  const base = { window: 60, maxErrorRate: 0.05, maxP99Ms: 200 };
  assert.deepEqual(canaryFromAnswers(base, '20', '1%'), { window: 20, maxErrorRate: 0.01, maxP99Ms: 200 });
  assert.deepEqual(canaryFromAnswers(base, '20', ''), { window: 20, maxP99Ms: 200 });
  assert.deepEqual(canaryFromAnswers(null, '30', '0.02'), { window: 30, maxErrorRate: 0.02 });
  assert.equal(canaryFromAnswers(null, '0', '1%'), undefined);
  assert.equal(canaryFromAnswers(null, '30', 'many'), undefined);
});

test('the terms in words', () => {
  assert.equal(describeCanary({}), '30 s window');
  assert.equal(describeCanary({ window: 10, maxErrorRate: 0.01, maxP99Ms: 200, maxSlowdown: 2, compare: false }), '10 s window, error rate at most 1%, p99 at most 200 ms, at most 2× slower, not compared with the old code');
});
