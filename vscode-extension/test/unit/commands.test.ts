import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Controller } from '../../src/commands';
import { EvidenceWatcher } from '../../src/evidenceWatcher';
import type { CanaryArgs, ChangeResultBody } from '../../src/protocol';
import { FailedResponses, Requests } from '../../src/requests';
import { SessionRegistry } from '../../src/sessions';
import type { ApplyMode } from '../../src/settings';
import { LivefixState } from '../../src/state';
import { changeBody, FakeClock, figures, RecordingHost, ScriptedSession } from './fakes';

const FILE = '/app/shop.py';
const ON_DISK = 'def total(price, quantity):\n    return price\n';
const FIXED = 'def total(price, quantity):\n    return price * quantity\n';

function setup(applyMode: ApplyMode = 'manual', canary: CanaryArgs | null = null) {
  const host = new RecordingHost();
  const failures = new FailedResponses();
  const forwarded: ChangeResultBody[] = [];
  const requests = new Requests(host, failures);
  const clock = new FakeClock();
  const evidence = new EvidenceWatcher({ host, requests, sleep: clock.sleep, now: clock.now });
  const controller = new Controller({
    host,
    sessions: new SessionRegistry(),
    requests,
    state: new LivefixState(),
    applyMode: () => applyMode,
    notifyServer: (body) => forwarded.push(body),
    canary: () => canary,
    evidence,
  });
  const session = new ScriptedSession('s1', 'shop.py', failures);
  return { host, failures, controller, session, forwarded, clock };
}

test("the server's apply command becomes livefix/apply with the definition", async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  session.answer('livefix/apply', { body: changeBody(1, 'Applied generation 1: 1 replaced') });
  await controller.applyDefinition({ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED, line: 8 });
  assert.deepEqual(session.requests, [
    { command: 'livefix/apply', args: { changes: [{ source: FIXED, qualname: 'total', module: 'shop', path: FILE, line: 8 }] } },
  ]);
  assert.deepEqual(host.errors, []);
});

test('apply at cursor runs the language server code action found there', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  host.editor = { uri: 'file:///app/shop.py', path: FILE, languageId: 'python', line: 1, character: 4, text: ON_DISK };
  host.actions = [
    { title: 'Reload `shop` in running process', command: 'livefix.reloadModule', arguments: [{ module: 'shop' }] },
    { title: 'Apply `total` to running process', command: 'livefix.applyDefinition', arguments: [{ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED }] },
  ];
  session.answer('livefix/apply', { body: changeBody(1, 'ok') });
  await controller.applyAtCursor();
  assert.equal(session.requests[0].args.changes[0].qualname, 'total');
});

test('apply at cursor outside a definition explains where to put the cursor', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  host.editor = { uri: 'file:///app/shop.py', path: FILE, languageId: 'python', line: 0, character: 0, text: '' };
  await controller.applyAtCursor();
  assert.deepEqual(session.requests, []);
  assert.deepEqual(host.infos, ['livefix: put the cursor inside a function or method to apply it to the running process.']);
});

test('without a livefix session a change says how to start one', async () => {
  const { host, controller } = setup();
  await controller.rollback();
  assert.match(host.errors[0], /no livefix debug session .* "Python \(livefix\)" configuration/);
});

test('applyMode never refuses changes from the editor', async () => {
  const { host, controller, session } = setup('never');
  controller.sessionStarted(session);
  await controller.reloadModified();
  assert.deepEqual(session.requests, []);
  assert.match(host.infos[0], /"never"/);
});

test('onSave reloads only the modules of the saved file, in the processes that loaded it', async () => {
  const { controller, session, failures } = setup('onSave');
  const other = new ScriptedSession('s2', 'other.py', failures);
  controller.sessionStarted(session);
  controller.sessionStarted(other);
  session
    .answer('livefix/status', { body: { generation: 0, modules: [{ name: 'shop', path: FILE, changed: ['total'], added: [], removed: [] }, { name: 'util', path: '/app/util.py', changed: ['f'], added: [], removed: [] }] } })
    .answer('livefix/reload', { body: changeBody(1, 'Reloaded shop') });
  other.answer('livefix/status', { body: { generation: 0, modules: [] } });
  await controller.saved(FILE, 'python');
  assert.deepEqual(session.requests.map((r) => [r.command, r.args]), [
    ['livefix/status', {}],
    ['livefix/reload', { modules: ['shop'] }],
  ]);
  assert.deepEqual(other.requests.map((r) => r.command), ['livefix/status']);
});

test('in manual mode saving sends nothing', async () => {
  const { controller, session } = setup('manual');
  controller.sessionStarted(session);
  await controller.saved(FILE, 'python');
  assert.deepEqual(session.requests, []);
});

test('every applied event is forwarded to the language server and updates the status bar', async () => {
  const { host, controller, session, forwarded } = setup();
  controller.sessionStarted(session);
  host.files.set(FILE, ON_DISK);
  const body = changeBody(1, 'Applied', { action: 'apply', sources: [{ module: 'shop', path: FILE, qualname: 'total', source: FIXED, generation: 1 }] });
  await controller.applied(session.id, body as ChangeResultBody);
  assert.deepEqual(forwarded, [body]);
  assert.equal(host.status?.text, '$(zap) gen 1 · 1 unpersisted');
  controller.sessionEnded(session.id);
  await new Promise((resolve) => setImmediate(resolve)); // sessionEnded refreshes without awaiting
  assert.equal(host.status, undefined);
});

test('history: pick a generation, see its diff against the version before it', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  host.files.set(FILE, ON_DISK);
  await controller.applied(session.id, changeBody(1, 'r', { action: 'apply', sources: [{ module: 'shop', path: FILE, qualname: 'total', source: FIXED, generation: 1 }] }) as ChangeResultBody);
  session.answer('livefix/history', {
    body: { generation: 1, generations: [{ generation: 1, time: 1764000000, action: 'apply', changes: [{ module: 'shop', qualname: 'total', kind: 'replaced' }], status: 'active' }] },
  });
  host.pickAnswers = ['Generation 1', 'Show the changes'];
  await controller.showHistory();
  assert.deepEqual(host.picks[0].labels, ['$(debug-stackframe) Generation 1: apply', 'Generation 0: as loaded']);
  assert.equal(host.diffs.length, 1);
  assert.equal(host.diffs[0].left, '# shop.total\ndef total(price, quantity):\n    return price\n');
  assert.equal(host.diffs[0].right, `# shop.total\n${FIXED}\n`);
});

test('history: rolling back to the chosen generation sends livefix/rollback {to}', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  session
    .answer('livefix/history', { body: { generation: 2, generations: [1, 2].map((g) => ({ generation: g, time: 1764000000 + g, action: 'apply', changes: [], status: 'active' })) } })
    .answer('livefix/rollback', { body: changeBody(1, 'Rolled back to generation 1') });
  host.pickAnswers = ['Generation 1', 'Roll back'];
  await controller.showHistory();
  assert.deepEqual(session.requests.at(-1), { command: 'livefix/rollback', args: { to: 1 } });
});

test("capture frames opens a read-only view of each thread's stack and locals", async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  session.answer('livefix/captureFrames', {
    body: { threads: [{ id: 1, name: 'MainThread', frames: [{ name: 'total', qualname: 'total', module: 'shop', path: FILE, line: 9, locals: { price: '5' } }] }] },
  });
  await controller.captureFrames();
  assert.deepEqual(session.requests[0].args, { locals: true });
  assert.equal(host.documents.length, 1);
  assert.match(host.documents[0].text, /Thread 1 "MainThread"\n  total  \/app\/shop.py:9  \[shop\]\n      price = 5/);
});

test('capture frames failing shows the reason', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  session.answer('livefix/captureFrames', { error: { kind: 'busy', message: 'another livefix operation is in progress' }, showUser: false });
  await controller.captureFrames();
  assert.deepEqual(host.errors, ['livefix: another livefix operation is in progress']);
});

test('a slow earlier status refresh does not overwrite a newer one', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  await new Promise((resolve) => setImmediate(resolve));
  const reads: ((text: string) => void)[] = [];
  host.readFile = () => new Promise((resolve) => reads.push(resolve));
  const body = (generation: number, source: string) =>
    changeBody(generation, 'r', { action: 'apply', sources: [{ module: 'shop', path: FILE, qualname: 'total', source, generation }] }) as ChangeResultBody;
  const first = controller.applied(session.id, body(1, FIXED));
  const second = controller.applied(session.id, body(2, ON_DISK));
  reads[1](ON_DISK); // the newer refresh reads first: generation 2 matches the file
  await second;
  reads[0](ON_DISK); // the older one finishes last
  await first;
  assert.equal(host.status?.text, '$(zap) gen 2');
});

test("debugpy's debugpyAttach event attaches a livefix child session to the parent", async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  await controller.childProcess(session.id, {
    name: 'Subprocess 4242',
    request: 'attach',
    subProcessId: 4242,
    connect: { host: '127.0.0.1', port: 53111 },
    livefix: { approval: 'risky' },
  });
  assert.deepEqual(host.children, [
    {
      parentId: 's1',
      configuration: {
        name: 'Subprocess 4242',
        request: 'attach',
        type: 'livefix',
        subProcessId: 4242,
        connect: { host: '127.0.0.1', port: 53111 },
        livefix: { approval: 'risky' },
      },
    },
  ]);
});

// -- live evidence, canary, watch ---------------------------------------------------------

const WATCHING = { state: 'watching' as const, window: 3, until: 1764000003 };

function evidenceBody(state: 'watching' | 'final', extra: object = {}) {
  return {
    generation: 1,
    state,
    since: 1764000000,
    until: 1764000003,
    functions: { 'shop.total': { before: figures(10, 2, 30), after: figures(40, 0, 12) } },
    report: 'shop.total: error rate 0% (was 20%), p99 12 ms (was 30 ms), 40 calls',
    ...extra,
  };
}

test('after an apply whose new code is watched, the evidence item polls livefix/evidence once a second until final', async () => {
  const { host, controller, session, clock } = setup();
  controller.sessionStarted(session);
  session
    .answer('livefix/apply', { body: changeBody(1, 'Applied generation 1', { evidence: WATCHING }) })
    .answer('livefix/evidence', { body: evidenceBody('watching') }, { body: evidenceBody('watching') }, { body: evidenceBody('final') });
  const [outcome] = await controller.applyDefinition({ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED });
  assert.ok('body' in outcome);
  await until(() => host.infos.length > 0);
  assert.deepEqual(
    session.requests.filter((r) => r.command === 'livefix/evidence').map((r) => r.args),
    [{ generation: 1 }, { generation: 1 }, { generation: 1 }],
  );
  assert.deepEqual(clock.sleeps, [1000, 1000, 1000]);
  assert.deepEqual(
    host.evidenceStatuses.map((s) => s?.text),
    ['$(pulse) livefix gen 1: watching… 3 s', '$(pulse) livefix gen 1: watching… 2 s', '$(pulse) livefix gen 1: watching… 1 s', '$(pass) livefix gen 1: shop.total: error rate 0% (was 20%), p99 12 ms (was 30 ms),…'],
  );
  assert.deepEqual(host.infos, ['livefix [shop.py]: evidence of generation 1: shop.total: error rate 0% (was 20%), p99 12 ms (was 30 ms), 40 calls']);
});

test('polling stops when the session ends, and the evidence item goes', async () => {
  const { host, controller, session, clock } = setup();
  controller.sessionStarted(session);
  clock.onSleep = (count) => count === 2 && controller.sessionEnded(session.id);
  session.answer('livefix/reload', { body: changeBody(1, 'Reloaded', { evidence: WATCHING }) }).answer('livefix/evidence', { body: evidenceBody('watching') });
  await controller.reloadModified();
  await until(() => host.evidenceStatus === undefined && clock.sleeps.length === 2);
  assert.equal(session.requests.filter((r) => r.command === 'livefix/evidence').length, 1);
  assert.deepEqual(host.infos, []);
});

test('an evidence request that fails stops the polling, hides the item and is logged', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  session
    .answer('livefix/apply', { body: changeBody(1, 'Applied', { evidence: WATCHING }) })
    .answer('livefix/evidence', { error: { kind: 'notFound', message: 'generation 1 has no evidence' } });
  await controller.applyDefinition({ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED });
  await until(() => host.evidenceStatuses.length === 2);
  assert.equal(host.evidenceStatus, undefined);
  assert.match(host.logs.at(-1)!, /livefix\/evidence of generation 1 failed \(notFound\): generation 1 has no evidence; not following it any more/);
  assert.deepEqual(host.errors, []);
});

test('evidence still "watching" long after its window: polling gives up', async () => {
  const { host, controller, session, clock } = setup();
  controller.sessionStarted(session);
  session.answer('livefix/apply', { body: changeBody(1, 'Applied', { evidence: WATCHING }) });
  session.answer('livefix/evidence', ...Array.from({ length: 40 }, () => ({ body: evidenceBody('watching') })));
  await controller.applyDefinition({ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED });
  await until(() => host.evidenceStatus === undefined && host.evidenceStatuses.length > 1);
  assert.equal(clock.sleeps.length, 34, '3 s window + 30 s grace, one poll a second');
  assert.match(host.logs.at(-1)!, /still not final 30 s after its window/);
});

test('no evidence in the answer (dry runs, nothing replaced): nothing is polled', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  session.answer('livefix/reload', { body: changeBody(1, 'Reloaded') });
  await controller.reloadModified();
  assert.deepEqual(host.evidenceStatuses, []);
  assert.deepEqual(session.requests.map((r) => r.command), ['livefix/reload']);
});

test('the livefix.canary setting goes with every apply and reload, not with rollbacks', async () => {
  const canary = { window: 20, maxErrorRate: 0.01 };
  const { controller, session } = setup('manual', canary);
  controller.sessionStarted(session);
  session
    .answer('livefix/reload', { body: changeBody(1, 'Reloaded') })
    .answer('livefix/rollback', { body: changeBody(0, 'Rolled back') });
  await controller.reloadModified();
  await controller.rollback();
  assert.deepEqual(session.requests.map((r) => r.args), [{ canary }, {}]);
});

test('"Apply with Canary…" asks the window and the error rate, prefilled from the setting', async () => {
  const { host, controller, session } = setup('manual', { window: 60, maxP99Ms: 250 });
  controller.sessionStarted(session);
  host.editor = { uri: 'file:///app/shop.py', path: FILE, languageId: 'python', line: 1, character: 4, text: ON_DISK };
  host.actions = [{ title: 'Apply `total` to running process', command: 'livefix.applyDefinition', arguments: [{ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED }] }];
  host.inputAnswers = ['15', '2%'];
  session.answer('livefix/apply', { body: changeBody(1, 'ok') });
  await controller.applyWithCanary();
  assert.deepEqual(host.inputs.map((i) => i.value), ['60', '']);
  assert.deepEqual(session.requests[0].args.canary, { window: 15, maxP99Ms: 250, maxErrorRate: 0.02 });

  host.inputAnswers = ['15', undefined];
  await controller.applyWithCanary();
  assert.equal(session.requests.length, 1, 'cancelling a question sends nothing');
});

test('a canary that rolled back: a warning, and the process runs the previous generation again', async () => {
  const { host, controller, session, forwarded } = setup();
  controller.sessionStarted(session);
  host.files.set(FILE, ON_DISK);
  await controller.applied(session.id, changeBody(1, 'r', { action: 'apply', sources: [{ module: 'shop', path: FILE, qualname: 'total', source: FIXED, generation: 1 }] }) as ChangeResultBody);
  assert.equal(host.status?.text, '$(zap) gen 1 · 1 unpersisted');
  session.answer('livefix/history', { body: { generation: 0, generations: [] } });
  const report = 'Canary rolled back generation 1: shop.total: error rate 30% over 1%';
  await controller.canaryVerdict(session.id, { outcome: 'rolledBack', generation: 1, report, reasons: ['shop.total: error rate 30% over 1%'] });
  assert.deepEqual(host.warnings, [`livefix [shop.py]: ${report}`]);
  assert.equal(host.evidenceStatus?.text, '$(error) livefix gen 1: rolled back by canary');
  assert.equal(host.status?.text, '$(zap) gen 0');
  const rollback = forwarded.at(-1)!;
  assert.equal(rollback.action, 'rollback');
  assert.deepEqual(rollback.sources, [{ module: 'shop', path: FILE, qualname: 'total', source: null, generation: 0 }]);
});

test('a canary that passed is information, and asks nothing of the process', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  await controller.canaryVerdict(session.id, { outcome: 'passed', generation: 2, report: 'Canary of generation 2 passed: shop.total: error rate 0%' });
  assert.deepEqual(host.infos, ['livefix [shop.py]: Canary of generation 2 passed: shop.total: error rate 0%']);
  assert.deepEqual(host.warnings, []);
  assert.deepEqual(session.requests, []);
});

test('history shows each generation’s evidence and canary, and opens the evidence document', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  const verdict = { outcome: 'passed', generation: 1, report: 'Canary of generation 1 passed' };
  session.answer('livefix/history', {
    body: {
      generation: 1,
      generations: [{ generation: 1, time: 1764000000, action: 'apply', changes: [{ module: 'shop', qualname: 'total', kind: 'replaced' }], status: 'active', evidence: evidenceBody('final', { canary: { window: 3, verdict } }) }],
    },
  });
  host.pickAnswers = ['Generation 1', 'live evidence'];
  await controller.showHistory();
  assert.equal(host.documents.length, 1);
  assert.equal(host.documents[0].name, 'livefix-evidence-1.txt');
  assert.match(host.documents[0].text, /passed: Canary of generation 1 passed/);
  assert.deepEqual(host.picks[1].labels, ['$(diff) Show the changes of this generation', '$(pulse) Show the live evidence of this generation']);
});

test('"Watch Function" defaults to the definition at the cursor and shows the figures', async () => {
  const { host, controller, session } = setup();
  controller.sessionStarted(session);
  host.editor = { uri: 'file:///app/shop.py', path: FILE, languageId: 'python', line: 1, character: 4, text: ON_DISK };
  host.actions = [{ title: 'Apply `total` to running process', command: 'livefix.applyDefinition', arguments: [{ uri: 'file:///app/shop.py', path: FILE, module: 'shop', qualname: 'total', source: FIXED }] }];
  host.inputAnswers = ['shop:total', ''];
  session.answer('livefix/watch', { body: { functions: { 'shop:total': [] } } }, { body: { functions: { 'shop:total': [figures(5, 1, 8)] } } }, { body: { functions: {} } });
  await controller.watchFunction();
  assert.equal(host.inputs[0].value, 'shop:total');
  await controller.watchFunction();
  await controller.stopWatching();
  assert.deepEqual(session.requests.map((r) => r.args), [{ targets: ['shop:total'] }, {}, { stop: true }]);
  assert.match(host.documents[1].text, /shop:total\n  code: 5 calls, 1 error \(20%\), p50 4 ms, p99 8 ms/);
  assert.match(host.documents[2].text, /nothing is watched/);
});

/** Lets the not-awaited evidence poll run; fails instead of hanging when it never gets there. */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 1000 && !condition(); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(condition(), `never held: ${condition}`);
}
