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
    { body: changeBody(1, 'Applied generation 1: 1 replaced') },
  );
  host.confirmAnswers = [true];
  const body = await requests.sendWithApproval(session, 'livefix/apply', { changes: [{ module: 'shop', source: 'def total(): ...' }] });
  assert.equal((body as { generation: number }).generation, 1);
  assert.deepEqual(session.requests.map((r) => r.args.approved), [undefined, true]);
  assert.equal(host.confirms.length, 1);
  assert.match(host.confirms[0].detail, /Thread "MainThread" is executing shop.total and will finish on the old code/);
  assert.match(host.confirms[0].detail, /Signature changes: shop.total\(price\) -> shop.total\(price, qty\)/);
});

test('declining approval sends nothing more and shows no error', async () => {
  const { host, failures, requests } = setup();
  const session = new ScriptedSession('s', 'app', failures).answer('livefix/apply', { error: APPROVAL });
  host.confirmAnswers = [false];
  assert.equal(await requests.sendWithApproval(session, 'livefix/apply', { changes: [] }), 'declined');
  assert.equal(session.requests.length, 1);
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
