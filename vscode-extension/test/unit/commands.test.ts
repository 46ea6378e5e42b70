import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Controller } from '../../src/commands';
import type { ChangeResultBody } from '../../src/protocol';
import { FailedResponses, Requests } from '../../src/requests';
import { SessionRegistry } from '../../src/sessions';
import type { ApplyMode } from '../../src/settings';
import { LivefixState } from '../../src/state';
import { changeBody, RecordingHost, ScriptedSession } from './fakes';

const FILE = '/app/shop.py';
const ON_DISK = 'def total(price, quantity):\n    return price\n';
const FIXED = 'def total(price, quantity):\n    return price * quantity\n';

function setup(applyMode: ApplyMode = 'manual') {
  const host = new RecordingHost();
  const failures = new FailedResponses();
  const forwarded: ChangeResultBody[] = [];
  const controller = new Controller({
    host,
    sessions: new SessionRegistry(),
    requests: new Requests(host, failures),
    state: new LivefixState(),
    applyMode: () => applyMode,
    notifyServer: (body) => forwarded.push(body),
  });
  const session = new ScriptedSession('s1', 'shop.py', failures);
  return { host, failures, controller, session, forwarded };
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
