import assert from 'node:assert/strict';
import { test } from 'node:test';
import { approvalDetail, FailedResponses, LivefixRequestError, Requests } from '../../src/requests';
import { changeBody, RecordingHost, ScriptedSession } from './fakes';

const APPROVAL = {
  kind: 'approvalRequired',
  message: 'Approval required: 1 thread is executing shop.total',
  reasons: ['1 thread is executing shop.total'],
  impact: { threads: [{ id: 7, name: 'MainThread', qualnames: ['shop.total'] }], signatureChanges: ['shop.total(price) -> shop.total(price, qty)'], removals: [] },
  report: 'Applying fix to shop.total',
};

const DRY_RUN_NO_GAPS = changeBody(0, 'Dry run (nothing changed)', { dryRun: true, instances: [] });

const GAP_REASON = '3 live `Cart` instances lack `discount`; pass a migration or they will raise AttributeError';
const GAPS = {
  kind: 'approvalRequired',
  message: `Approval required: ${GAP_REASON}`,
  reasons: [GAP_REASON],
  impact: { threads: [], signatureChanges: [], removals: [] },
  report: `Applying fix to shop.Cart.total\n${GAP_REASON}`,
};
const CART_GAPS = [{ module: 'shop', qualname: 'Cart', instances: 3, lacking: { discount: 3 } }];
const DRY_RUN_GAPS = changeBody(0, 'Dry run (nothing changed)', { dryRun: true, instances: CART_GAPS });
const CART_FIX = { changes: [{ module: 'shop', qualname: 'Cart.total', source: 'def total(self): return self.price - self.discount' }] };

function setup() {
  const host = new RecordingHost();
  const failures = new FailedResponses();
  return { host, failures, requests: new Requests(host, failures) };
}

test("a failure's structured error is recovered from the adapter's response", async () => {
  const { failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/apply', {
    error: { kind: 'syntax', message: 'invalid syntax at line 3', line: 3 },
  });
  await assert.rejects(requests.send(session, 'livefix/apply', { changes: [] }), (error: unknown) => {
    assert.ok(error instanceof LivefixRequestError);
    assert.equal(error.kind, 'syntax');
    assert.equal(error.error.line, 3);
    return true;
  });
});

test('approvalRequired shows the impact and re-sends with approved: true when accepted', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer(
    'livefix/apply',
    { error: APPROVAL },
    { body: DRY_RUN_NO_GAPS },
    { body: changeBody(1, 'Applied generation 1: 1 replaced') },
  );
  host.confirmAnswers = [true];
  const body = await requests.sendWithApproval(session, 'livefix/apply', { changes: [{ module: 'shop', source: 'def total(): ...' }] });
  assert.equal((body as { generation: number }).generation, 1);
  assert.deepEqual(session.requests.map((r) => [r.args.dryRun, r.args.approved]), [[undefined, undefined], [true, undefined], [undefined, true]]);
  assert.equal(host.confirms.length, 1);
  assert.match(host.confirms[0].detail, /Thread "MainThread" is executing shop.total and will finish on the old code/);
  assert.match(host.confirms[0].detail, /Signature changes: shop.total\(price\) -> shop.total\(price, qty\)/);
});

test('declining approval sends nothing more and shows no error', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/apply', { error: APPROVAL }, { body: DRY_RUN_NO_GAPS });
  host.confirmAnswers = [false];
  assert.equal(await requests.sendWithApproval(session, 'livefix/apply', { changes: [] }), 'declined');
  assert.equal(session.requests.length, 2, 'the refused request and its dry run, nothing after');
  requests.report(await requests.sendToAll([], 'livefix/apply', {}), 'livefix/apply');
  assert.deepEqual(host.errors, []);
});

test('one process: an error becomes a notification with the reason', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/apply', {
    error: { kind: 'incompatible', message: 'shop.total: closure variables differ (x)' },
    showUser: false,
  });
  requests.report(await requests.sendToAll([session], 'livefix/apply', {}), 'livefix/apply');
  assert.deepEqual(host.errors, ['livefix: shop.total: closure variables differ (x)']);
});

test('an error VS Code already showed (showUser) is not shown twice, but is logged', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/apply', {
    error: { kind: 'syntax', message: 'pricing.py:2:2: invalid syntax' },
  });
  requests.report(await requests.sendToAll([session], 'livefix/apply', {}), 'livefix/apply');
  assert.deepEqual(host.errors, []);
  assert.deepEqual(host.logs, ['[app] livefix/apply failed (syntax): pricing.py:2:2: invalid syntax']);
});

test('several processes: a line per process; notFound elsewhere is not an error', async () => {
  const { host, failures, requests } = setup();
  const parent = new ScriptedSession('p', 'main', failures).answer('livefix/apply', {
    error: { kind: 'notFound', message: 'module shop.worker is not loaded' },
  });
  const child = new ScriptedSession('c', 'worker 12', failures, 'p').answer('livefix/apply', {
    body: changeBody(2, 'Applying fix to shop.worker.run\nnew calls use the new code\nApplied generation 2: 1 replaced, 0 added, 0 removed\n'),
  });
  requests.report(await requests.sendToAll([parent, child], 'livefix/apply', {}), 'livefix/apply');
  assert.deepEqual(host.console, [
    'livefix [main]: not applied here (module shop.worker is not loaded)',
    'livefix [worker 12]: Applied generation 2: 1 replaced, 0 added, 0 removed',
  ]);
  assert.deepEqual(host.errors, []);
});

test('several processes: notFound everywhere is reported', async () => {
  const { host, failures, requests } = setup();
  const sessions = ['a', 'b'].map((id) =>
    new ScriptedSession(id, id, failures).answer('livefix/reload', { error: { kind: 'notFound', message: `no module x in ${id}` }, showUser: false }),
  );
  requests.report(await requests.sendToAll(sessions, 'livefix/reload', {}), 'livefix/reload');
  assert.deepEqual(host.errors, ['livefix [a]: no module x in a', 'livefix [b]: no module x in b']);
});

test('the approval detail falls back to the message when there is no impact', () => {
  assert.equal(approvalDetail({ kind: 'approvalRequired', message: 'the approval policy is "always"' }), 'the approval policy is "always"');
});

test('a stale failure of an earlier request is not read as the next one', async () => {
  const { failures, requests } = setup();
  failures.record('s', { type: 'response', command: 'livefix/apply', success: false, message: 'old', body: { livefix: { kind: 'busy', message: 'old' } } });
  const session = new ScriptedSession('s', 'app', failures);
  session.customRequest = async () => {
    throw new Error('adapter went away');
  };
  await assert.rejects(requests.send(session, 'livefix/apply', {}), (error: unknown) => {
    assert.ok(error instanceof LivefixRequestError);
    assert.deepEqual(error.error, { kind: 'failed', message: 'adapter went away' });
    return true;
  });
});

test('live instances lacking attributes: "Migrate…" asks the defaults and re-sends with migrate and approved', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer(
    'livefix/apply',
    { error: GAPS },
    { body: DRY_RUN_GAPS },
    { body: changeBody(4, 'Applied generation 4', { migrated: [{ class: 'shop.Cart', instances: 3, attributes: ['discount'], migration: 'given', scanMs: 2, windowMs: 0.1 }] }) },
  );
  host.chooseAnswers = ['Migrate…'];
  host.inputAnswers = ['{"discount": 0.1}'];
  const body = await requests.sendWithApproval(session, 'livefix/apply', CART_FIX);
  assert.equal((body as { generation: number }).generation, 4);
  assert.deepEqual(host.chooses[0].buttons, ['Apply anyway', 'Migrate…']);
  assert.match(host.chooses[0].detail, /3 live `Cart` instances lack `discount`/);
  assert.equal(host.inputs[0].value, '{"discount": 0}', 'prefilled with every lacking attribute');
  assert.match(host.inputs[0].prompt, /3 live `shop.Cart` instances lack `discount` \(3\)/);
  assert.deepEqual(session.requests[1].args, { ...CART_FIX, dryRun: true });
  assert.deepEqual(session.requests[2].args, { ...CART_FIX, migrate: { 'shop:Cart': { discount: 0.1 } }, approved: true });
});

test('a migrate(obj) function is sent as its source', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/reload', { error: GAPS }, { body: DRY_RUN_GAPS }, { body: changeBody(2, 'Reloaded') });
  host.chooseAnswers = ['Migrate…'];
  host.inputAnswers = ['def migrate(obj): obj.discount = obj.price * 0.1'];
  await requests.sendWithApproval(session, 'livefix/reload', { modules: ['shop'] });
  assert.deepEqual(session.requests[2].args, { modules: ['shop'], migrate: { 'shop:Cart': 'def migrate(obj): obj.discount = obj.price * 0.1' }, approved: true });
});

test('"Apply anyway" with instance gaps sends approved without a migration; cancelling the defaults sends nothing', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/apply', { error: GAPS }, { body: DRY_RUN_GAPS }, { body: changeBody(5, 'ok') });
  host.chooseAnswers = ['Apply anyway'];
  await requests.sendWithApproval(session, 'livefix/apply', CART_FIX);
  assert.deepEqual(session.requests[2].args, { ...CART_FIX, approved: true });

  const again = new ScriptedSession('t', 'app', failures).answer('livefix/apply', { error: GAPS }, { body: DRY_RUN_GAPS });
  host.chooseAnswers = ['Migrate…'];
  host.inputAnswers = [undefined];
  assert.equal(await requests.sendWithApproval(again, 'livefix/apply', CART_FIX), 'declined');
  assert.equal(again.requests.length, 2);
  assert.deepEqual(host.errors, []);
});

test('gaps given in the error details are used without a dry run; rollbacks never dry-run', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer(
    'livefix/apply',
    { error: { ...GAPS, instances: CART_GAPS } },
    { body: changeBody(1, 'ok') },
  );
  host.chooseAnswers = ['Migrate…'];
  host.inputAnswers = ['{"discount": 0}'];
  await requests.sendWithApproval(session, 'livefix/apply', CART_FIX);
  assert.deepEqual(session.requests.map((r) => r.args.dryRun), [undefined, undefined]);

  const rollback = new ScriptedSession('r', 'app', failures).answer('livefix/rollback', { error: APPROVAL }, { body: changeBody(0, 'Rolled back') });
  host.confirmAnswers = [true];
  await requests.sendWithApproval(rollback, 'livefix/rollback', {});
  assert.deepEqual(rollback.requests.map((r) => r.args), [{}, { approved: true }]);
});

test('a failing dry run falls back to the plain approval question', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer(
    'livefix/apply',
    { error: GAPS },
    { error: { kind: 'busy', message: 'another livefix operation is in progress' } },
    { body: changeBody(1, 'ok') },
  );
  host.confirmAnswers = [true];
  await requests.sendWithApproval(session, 'livefix/apply', CART_FIX);
  assert.equal(host.confirms.length, 1);
  assert.deepEqual(session.requests[2].args, { ...CART_FIX, approved: true });
  assert.match(host.logs.join('\n'), /dry run for live instances failed: another livefix operation/);
});
