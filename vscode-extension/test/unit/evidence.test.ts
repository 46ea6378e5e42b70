import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canaryNotice, figuresLine, finalMessage, finalStatus, formatEvidence, formatWatch, historyEvidence, validateWatchTarget, verdictStatus, watchingStatus } from '../../src/evidence';
import type { CanaryVerdict, EvidenceBody, GenerationInfo } from '../../src/protocol';
import { figures } from './fakes';

const T0 = 1764000000;
const REPORT = 'shop.price: error rate 0% (was 15%), p99 45 ms (was 200 ms), 1,200 calls';

function evidence(extra: Partial<EvidenceBody> = {}): EvidenceBody {
  return {
    generation: 3,
    state: 'final',
    since: T0,
    until: T0 + 30,
    functions: { 'shop.price': { before: figures(200, 30, 200), after: figures(1200, 0, 45) } },
    report: REPORT,
    ...extra,
  };
}

const ROLLED_BACK: CanaryVerdict = {
  outcome: 'rolledBack',
  generation: 3,
  report: 'Canary rolled back generation 3: shop.price: p99 450 ms over 200 ms',
  reasons: ['shop.price: p99 450 ms over 200 ms'],
};

test('the evidence item while watching counts down and shows the figures so far', () => {
  const start = watchingStatus('app', 3, { state: 'watching', window: 30, until: T0 + 30 }, T0 + 6.2);
  assert.equal(start.text, '$(pulse) livefix gen 3: watching… 24 s');
  assert.equal(start.command, 'livefix.showHistory');
  const later = watchingStatus('app', 3, evidence({ state: 'watching', canary: { window: 30, maxErrorRate: 0.01 } }), T0 + 40);
  assert.equal(later.text, '$(pulse) livefix gen 3: watching… 0 s');
  assert.match(later.tooltip, /A canary judges it \(30 s window, error rate at most 1%\)/);
  assert.match(later.tooltip, /So far: shop.price: error rate 0%/);
});

test('final: the report (shortened in the item, whole in the tooltip), or the canary outcome', () => {
  const plain = finalStatus('app', evidence());
  assert.equal(plain.text, '$(pass) livefix gen 3: shop.price: error rate 0% (was 15%), p99 45 ms (was 200 ms)…');
  assert.match(plain.tooltip, new RegExp(REPORT.replace(/[()]/g, '\\$&')));
  const judged = finalStatus('app', evidence({ canary: { window: 30, verdict: ROLLED_BACK } }));
  assert.equal(judged.text, '$(error) livefix gen 3: rolled back by canary');
  assert.match(judged.tooltip, /Canary rolled back generation 3/);
  assert.equal(verdictStatus('app', { outcome: 'passed', generation: 4, report: 'Canary of generation 4 passed: ...' }).text, '$(pass) livefix gen 4: canary passed');
  assert.equal(finalMessage('app', evidence()), `livefix [app]: evidence of generation 3: ${REPORT}`);
});

test('a canary that rolled back or failed is a warning; passed and inconclusive are information', () => {
  assert.deepEqual(canaryNotice('app', ROLLED_BACK), { severity: 'warning', message: `livefix [app]: ${ROLLED_BACK.report}` });
  assert.equal(canaryNotice('app', { ...ROLLED_BACK, outcome: 'failed' }).severity, 'warning');
  assert.equal(canaryNotice('app', { ...ROLLED_BACK, outcome: 'passed' }).severity, 'info');
  assert.equal(canaryNotice('app', { ...ROLLED_BACK, outcome: 'inconclusive' }).severity, 'info');
  assert.equal(canaryNotice('', ROLLED_BACK).message, `livefix: ${ROLLED_BACK.report}`);
});

test('figures in words', () => {
  assert.equal(figuresLine(figures(1200, 3, 45, { errorTypes: { ValueError: 1, KeyError: 2 }, running: 2 })), '1,200 calls, 3 errors (0.25%: 2 KeyError, 1 ValueError), p50 22.5 ms, p99 45 ms, 2 running');
  assert.equal(figuresLine(figures(1, 0, null)), '1 call, 0 errors (0%)');
});

test('the evidence document: report, before and after per function, the canary and its reasons', () => {
  const text = formatEvidence('app', evidence({ functions: { ...evidence().functions, 'shop.tax': { before: null, after: figures(0, 0, null) } }, canary: { window: 30, maxP99Ms: 200, verdict: ROLLED_BACK } }));
  assert.equal(
    text,
    [
      '# Evidence of generation 3 in "app" (final)',
      '# watched from 2025-11-24 16:00:00 UTC to 2025-11-24 16:00:30 UTC',
      '',
      REPORT,
      '',
      'shop.price',
      '  before (old code): 200 calls, 30 errors (15%), p50 100 ms, p99 200 ms',
      '  after  (new code): 1,200 calls, 0 errors (0%), p50 22.5 ms, p99 45 ms',
      'shop.tax',
      '  before (old code): not recorded',
      '  after  (new code): 0 calls, 0 errors (0%)',
      '',
      'Canary: 30 s window, p99 at most 200 ms',
      `  rolledBack: ${ROLLED_BACK.report}`,
      '  - shop.price: p99 450 ms over 200 ms',
      '',
    ].join('\n'),
  );
});

test("the history's words for a generation's evidence", () => {
  const generation: GenerationInfo = { generation: 3, time: T0, action: 'apply', changes: [], status: 'rolledBack' };
  assert.equal(historyEvidence(generation), undefined);
  assert.equal(historyEvidence({ ...generation, evidence: evidence() }), REPORT);
  assert.equal(historyEvidence({ ...generation, evidence: evidence({ state: 'watching', canary: { window: 30 } }) }), `canary judging · watching: ${REPORT}`);
  assert.equal(historyEvidence({ ...generation, evidence: evidence({ canary: { verdict: ROLLED_BACK } }) }), `canary rolledBack · ${REPORT}`);
});

test('watched functions: each version of the code, the running one last', () => {
  const when = new Date(T0 * 1000);
  assert.equal(
    formatWatch('app', { functions: { 'shop:price': [figures(10, 5, 20), figures(4, 0, 10, { running: 1 })], 'shop:tax': [] } }, when),
    [
      '# Functions watched in "app" at 2025-11-24T16:00:00.000Z',
      '',
      'shop:price',
      '  version 1: 10 calls, 5 errors (50%), p50 10 ms, p99 20 ms',
      '  version 2 (running): 4 calls, 0 errors (0%), p50 5 ms, p99 10 ms, 1 running',
      '',
      'shop:tax',
      '  (no calls yet)',
      '',
    ].join('\n'),
  );
  assert.match(formatWatch('app', { functions: {} }, when), /\(nothing is watched\)/);
});

test('a watch target is module:qualname, or empty', () => {
  for (const good of ['', 'shop:price', 'shop.pricing:Cart.total', ' app:main ']) assert.equal(validateWatchTarget(good), undefined, good);
  for (const bad of ['shop', 'shop.price', 'shop:', ':price', 'shop:Cart..total', 'a b:c']) assert.match(validateWatchTarget(bad)!, /module:qualname/, bad);
});
