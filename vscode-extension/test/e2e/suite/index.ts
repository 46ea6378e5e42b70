/**
 * The end-to-end test, run inside VS Code's extension host (code-server) by run.mjs.
 *
 * A developer's path through livefix: open the buggy module, start a "Python (livefix)"
 * session on a program that prints a total in a loop, fix `total` in the editor, open the
 * quick-fix menu and click "Apply `total` to running process" in the browser, see the printed
 * total change, roll back with the extension's command, see it change back. Everything is real: code-server, the extension, `python -m livefix.adapter`
 * with debugpy, `python -m livefix.lsp`, the debuggee.
 *
 * Then the drift diagnostic (the extension forwards livefix/applied to the server), persist
 * of the running definition into the file, the history diff, captured frames (the program's
 * `main()` among them), a broken definition refused with a notification while the process
 * keeps its code, `applyMode: onSave` reloading a saved module, and a fix reaching a parent
 * and its child process.
 *
 * Installed as packaged and without `livefix.python`: the adapter and the language server run
 * in the environment the extension made from its bundled wheels in global storage
 * (LIVEFIX_E2E_STORAGE), the program on a bare interpreter (LIVEFIX_E2E_DEBUGGEE) that gets
 * debugpy and livefix's engine from the adapter only.
 *
 * Waits are on conditions (adapter messages, documents, diagnostics, DOM elements) with
 * deadlines; nothing sleeps.
 */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

const control = process.env.LIVEFIX_E2E_CONTROL ?? '';
const debuggee = process.env.LIVEFIX_E2E_DEBUGGEE ?? '';
const storage = process.env.LIVEFIX_E2E_STORAGE ?? '';

async function call(route: string, body = ''): Promise<string> {
  const response = await fetch(`${control}${route}`, { method: 'POST', body });
  const text = await response.text();
  if (!response.ok) throw new Error(`e2e control ${route} failed: ${text}`);
  return text;
}

const log = (line: string) => call('/log', line);
const screenshot = (name: string) => call(`/screenshot?name=${encodeURIComponent(name)}`);
const click = (selector: string, text: string) => call(`/click?selector=${encodeURIComponent(selector)}&text=${encodeURIComponent(text)}`);
const visible = (selector: string, text = '') => call(`/waitFor?selector=${encodeURIComponent(selector)}&text=${encodeURIComponent(text)}`);
const statusBarText = () => call('/statusbar');
const count = async (selector: string, text: string) =>
  Number(await call(`/count?selector=${encodeURIComponent(selector)}&text=${encodeURIComponent(text)}`));

/** Resolves when `check` returns a value; re-checks whenever `subscribe` fires, and every 100 ms as a fallback. */
function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error?: Error, value?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      error ? reject(error) : resolve(value as T);
    };
    const attempt = async () => {
      try {
        const value = await check();
        if (value !== undefined) finish(undefined, value);
      } catch (error) {
        finish(error as Error);
      }
    };
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    const poll = setInterval(attempt, 100);
    void attempt();
  });
}

/** Program output and livefix events of every livefix session, as the adapter sent them. */
class AdapterRecorder implements vscode.Disposable {
  readonly output: string[] = [];
  readonly events: { event: string; body: any }[] = [];
  private readonly disposables: vscode.Disposable[];

  constructor() {
    this.disposables = [
      vscode.debug.registerDebugAdapterTrackerFactory('livefix', {
        createDebugAdapterTracker: () => ({
          onDidSendMessage: (message: any) => {
            if (message.type === 'event' && message.event === 'output') this.output.push(String(message.body?.output ?? ''));
            if (message.type === 'event' && (String(message.event).startsWith('livefix/') || message.event === 'stopped')) {
              this.events.push({ event: message.event, body: message.body });
            }
          },
        }),
      }),
    ];
  }

  /** The `total=` printed in the latest complete tick line after `from` (an output index). */
  latestTotal(from: number): string | undefined {
    return this.latest(from, /^tick \d+ total=(\d+)$/);
  }

  /** The first group of the latest complete output line after `from` matching `pattern`. */
  latest(from: number, pattern: RegExp): string | undefined {
    const lines = this.output.slice(from).join('').split('\n').slice(0, -1);
    for (let index = lines.length - 1; index >= 0; index--) {
      const match = pattern.exec(lines[index]);
      if (match) return match[1];
    }
    return undefined;
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}

export async function run(): Promise<void> {
  try {
    await scenario();
  } catch (error) {
    // VS Code only reports "exit code 1": put the reason in the driver's log.
    await log(`FAILED: ${error instanceof Error ? error.stack ?? error.message : String(error)}`).catch(() => undefined);
    throw error;
  }
}

async function scenario(): Promise<void> {
  const extension = vscode.extensions.getExtension('livefix.livefix');
  assert.ok(extension, 'the livefix extension is loaded in the development host');
  await extension.activate();
  const debuggers = extension.packageJSON.contributes.debuggers as { type: string; label: string }[];
  assert.deepEqual(debuggers.map((d) => [d.type, d.label]), [['livefix', 'Python (livefix)']]);
  await log('extension active; debugger "Python (livefix)" contributed');
  assert.ok(debuggee && storage, 'run.mjs passes LIVEFIX_E2E_DEBUGGEE and LIVEFIX_E2E_STORAGE');
  assert.equal(vscode.workspace.getConfiguration('livefix').get('python'), '', 'no livefix.python: the bundled path');

  // Activation started the language server, which needed the extension's own environment.
  const environmentsDir = path.join(storage, 'python');
  const made = fs.readdirSync(environmentsDir);
  assert.equal(made.length, 1, `one private environment in global storage: ${made}`);
  assert.match(made[0], /^\d+\.\d+\.\d+-[0-9a-f]{12}-py3\.\d+$/);
  const environment = path.join(environmentsDir, made[0]);
  const marker = JSON.parse(fs.readFileSync(path.join(environment, 'livefix-environment.json'), 'utf8'));
  await log(`private environment made from the bundled wheels: ${environment} (base ${marker.base})`);

  await vscode.commands.executeCommand('workbench.action.closeAuxiliaryBar'); // room for the editor
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the sample workspace is open');
  const pricingPath = path.join(folder.uri.fsPath, 'pricing.py');
  const stopFile = path.join(folder.uri.fsPath, '.stop');
  const recorder = new AdapterRecorder();
  let session: vscode.DebugSession | undefined;
  try {
    const document = await vscode.workspace.openTextDocument(pricingPath);
    const editor = await vscode.window.showTextDocument(document);

    // -- a real livefix debug session --------------------------------------------------------
    const started = new Promise<vscode.DebugSession>((resolve) => {
      const listener = vscode.debug.onDidStartDebugSession((s) => {
        if (s.type === 'livefix') {
          listener.dispose();
          resolve(s);
        }
      });
    });
    const ok = await vscode.debug.startDebugging(folder, {
      type: 'livefix',
      name: 'app (livefix)',
      request: 'launch',
      program: path.join(folder.uri.fsPath, 'app.py'),
      args: [stopFile],
      cwd: folder.uri.fsPath,
      console: 'internalConsole',
      // "never": VS Code refuses modal dialogs while an extension test runs ("DialogService:
      // refused to show dialog in tests"), so the approval modal is covered by the unit tests;
      // under "risky" this test would depend on whether the loop is inside `total` right then.
      livefix: { approval: 'never' },
    });
    assert.ok(ok, 'startDebugging accepted the livefix configuration');
    session = await started;
    const before = await waitFor('the program to print total=5', () => (recorder.latestTotal(0) === '5' ? true : undefined));
    assert.ok(before);
    await log('debug session running; the program prints total=5');
    // The program runs on the bare interpreter; debugpy and livefix come from the extension's environment.
    const answer = (await session.customRequest('evaluate', {
      expression: "'|'.join([__import__('sys').executable, __import__('sys').modules['livefix'].__file__, __import__('sys').modules['debugpy'].__file__])",
      context: 'repl',
    })) as { result: string };
    const [executable, livefixFile, debugpyFile] = answer.result.replace(/^'|'$/g, '').split('|');
    assert.equal(executable, debuggee, 'the program runs on the developer\'s interpreter');
    assert.ok(livefixFile.startsWith(environment + path.sep), `livefix injected from the private environment: ${livefixFile}`);
    assert.ok(debugpyFile.startsWith(environment + path.sep), `debugpy from the private environment: ${debugpyFile}`);
    await log(`the program runs on ${executable}; livefix and debugpy in it come from ${environment}`);
    await vscode.window.showTextDocument(document, { preserveFocus: false });
    await screenshot('session-running-bug');

    // -- fix the bug in the editor, apply it from the quick-fix menu ---------------------------
    const line = document.getText().split('\n').findIndex((text) => text.includes('return price  #'));
    assert.ok(line >= 0);
    const fixed = await editor.edit((edit) =>
      edit.replace(new vscode.Range(line, 0, line, document.lineAt(line).text.length), '    return price * quantity'),
    );
    assert.ok(fixed);
    editor.selection = new vscode.Selection(line, 8, line, 8);
    // The language server answers once it has the document: wait for its action to exist.
    await waitFor('the language server to offer "Apply `total` to running process"', async () => {
      const actions = (await vscode.commands.executeCommand<vscode.CodeAction[]>(
        'vscode.executeCodeActionProvider',
        document.uri,
        new vscode.Range(line, 8, line, 8),
      )) ?? [];
      return actions.some((action) => action.title === 'Apply `total` to running process') ? true : undefined;
    });
    const outputBeforeApply = recorder.output.length;
    const eventsBeforeApply = recorder.events.length;
    // The command behind Ctrl+. (a key press raced the editor's focus in headless chromium).
    await vscode.commands.executeCommand('editor.action.quickFix');
    const menuEntry = 'Apply `total` to running process';
    await visible('.action-widget', menuEntry);
    await screenshot('quick-fix-menu');
    await click('.action-widget .monaco-list-row', menuEntry);
    const applied = await waitFor('the livefix/applied event of the apply', () =>
      recorder.events.slice(eventsBeforeApply).find((e) => e.event === 'livefix/applied' && e.body?.action === 'apply'),
    );
    assert.equal(applied.body.generation, 1);
    assert.deepEqual(applied.body.applied.map((a: any) => [a.module, a.qualname, a.kind]), [['pricing', 'total', 'replaced']]);
    await waitFor('the program to print total=15 (fixed)', () => (recorder.latestTotal(outputBeforeApply) === '15' ? true : undefined));
    await log('applied from the quick-fix menu: the program now prints total=15');
    await vscode.commands.executeCommand('workbench.debug.action.focusRepl');
    await waitFor('the status bar to show generation 1 with 1 unpersisted change', async () =>
      (await statusBarText()).includes('gen 1 · 1 unpersisted') ? true : undefined,
    );
    await log('status bar: gen 1 · 1 unpersisted');
    // The process watches the new code for 30 s; the extension polls livefix/evidence meanwhile.
    const evidenceText = await waitFor('the evidence status item of generation 1', async () => {
      const text = await statusBarText();
      return /livefix gen 1: \S/.test(text) ? text : undefined;
    });
    await log(`evidence status item: ${evidenceText.split('\n').find((line) => line.includes('livefix gen 1:'))}`);
    await screenshot('fix-applied');

    // -- history: pick generation 1 in the quick pick, see its diff ------------------------------
    const historyDone = vscode.commands.executeCommand('livefix.showHistory');
    await click('.quick-input-widget .monaco-list-row', 'Generation 1: apply');
    // Generation 1 is the running one (no roll back to it) and is watched: its changes or its evidence.
    await click('.quick-input-widget .monaco-list-row', 'Show the changes of this generation');
    await historyDone;
    const diff = await waitFor('the diff of generation 1', () => {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return input instanceof vscode.TabInputTextDiff ? input : undefined;
    });
    const [left, right] = await Promise.all([vscode.workspace.openTextDocument(diff.original), vscode.workspace.openTextDocument(diff.modified)]);
    assert.match(left.getText(), /return price  # the bug/);
    assert.match(right.getText(), /return price \* quantity/);
    await screenshot('history-diff');
    const evidenceDone = vscode.commands.executeCommand('livefix.showHistory');
    await click('.quick-input-widget .monaco-list-row', 'Generation 1: apply');
    await click('.quick-input-widget .monaco-list-row', 'Show the live evidence of this generation');
    await evidenceDone;
    const evidence = await waitFor('the evidence document of generation 1', () => {
      const document = vscode.window.activeTextEditor?.document;
      return document?.uri.path.endsWith('livefix-evidence-1.txt') ? document : undefined;
    });
    assert.match(evidence.getText(), /^# Evidence of generation 1 in "[^"]+" \((still watching|final)\)/);
    assert.match(evidence.getText(), /^pricing\.total\n  before \(old code\): .*\n  after  \(new code\): \d+ calls?/m);
    await log(`evidence of generation 1:\n${evidence.getText()}`);
    await screenshot('history-evidence');

    // -- capture frames: a read-only view of the threads ----------------------------------------
    await vscode.commands.executeCommand('livefix.captureFrames');
    const frames = await waitFor('the captured frames document', () =>
      vscode.window.activeTextEditor?.document.uri.path.includes('/livefix-frames-') ? vscode.window.activeTextEditor.document : undefined,
    );
    const mainThread = frames.getText().split(/\n(?=Thread )/).find((block) => /^Thread \d+ "MainThread"/.test(block));
    assert.ok(mainThread, 'the main thread is captured');
    const frameLines = mainThread.split('\n').filter((text) => /^  \S/.test(text));
    assert.ok(frameLines.length > 0, 'the main thread has Python frames');
    assert.match(frames.getText(), /^      \w+ = /m, 'locals are shown under their frames');
    // The launched program's main(), at a line of its body, called from the module's `main()` line.
    const appPath = path.join(folder.uri.fsPath, 'app.py');
    const appLines = fs.readFileSync(appPath, 'utf8').split('\n');
    const defLine = appLines.indexOf('def main():') + 1;
    const callLine = appLines.indexOf('    main()') + 1;
    const escaped = appPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const mainFrame = new RegExp(`^  main  ${escaped}:(\\d+)`, 'm').exec(mainThread);
    assert.ok(mainFrame, `the main thread shows app.py's main():\n${frameLines.join('\n')}`);
    assert.ok(Number(mainFrame[1]) > defLine && Number(mainFrame[1]) < callLine, `main() at a line of its body: ${mainFrame[0]}`);
    assert.match(mainThread, new RegExp(`^  <module>  ${escaped}:${callLine}\\b`, 'm'), "main() is called from app.py's module code");
    assert.match(mainThread.slice(mainFrame.index), /^      stop_file = /m, "main()'s locals");
    await log(`captured frames of MainThread:\n${frameLines.join('\n')}`);
    await screenshot('captured-frames');

    // -- drift and persist: the file goes back to the bug while the process runs the fix ------------
    await vscode.window.showTextDocument(document);
    await vscode.commands.executeCommand('workbench.action.files.revert');
    assert.match(document.getText(), /return price  # the bug/);
    // The extension forwarded livefix/applied to the server, which now flags the drift.
    const drift = await waitFor('the drift diagnostic on `total`', () =>
      vscode.languages.getDiagnostics(document.uri).find((d) => d.message.includes('running process has generation 1 of `total`')),
    );
    await log(`drift diagnostic: ${drift.message}`);
    await vscode.commands.executeCommand('workbench.actions.view.problems');
    await screenshot('drift-diagnostic');
    vscode.window.activeTextEditor!.selection = new vscode.Selection(drift.range.start, drift.range.start);
    const header = document.lineAt(0).text;
    await vscode.commands.executeCommand('livefix.persistRunning');
    await waitFor('the running definition written into the editor', () =>
      /return price \* quantity/.test(document.getText()) ? true : undefined,
    );
    assert.equal(document.lineAt(0).text, header, 'the rest of the file is untouched');
    await waitFor('the drift diagnostic to clear', () =>
      vscode.languages.getDiagnostics(document.uri).some((d) => d.message.includes('running process has generation')) ? undefined : true,
    );
    assert.ok(await document.save());
    await waitFor('the status bar to show generation 1 with nothing unpersisted', async () => {
      const text = await statusBarText();
      return text.includes('gen 1') && !text.includes('unpersisted') ? true : undefined;
    });
    await log('persisted: the file now has the running definition; nothing unpersisted');
    await screenshot('persisted');

    // -- roll back: the program prints the old total again --------------------------------------
    const outputBeforeRollback = recorder.output.length;
    await vscode.commands.executeCommand('livefix.rollback');
    const rolledBack = await waitFor('the livefix/applied event of the rollback', () =>
      recorder.events.find((e) => e.event === 'livefix/applied' && e.body?.action === 'rollback'),
    );
    assert.equal(rolledBack.body.generation, 0);
    await waitFor('the program to print total=5 again', () => (recorder.latestTotal(outputBeforeRollback) === '5' ? true : undefined));
    await log('rolled back: the program prints total=5 again');
    await vscode.commands.executeCommand('workbench.debug.action.focusRepl');
    await waitFor('the status bar to show generation 0', async () => ((await statusBarText()).includes('gen 0') ? true : undefined));
    await screenshot('rolled-back');

    // -- a broken definition: refused with the reason, the process keeps running the old code ---
    const eventsBeforeBroken = recorder.events.length;
    const outputBeforeBroken = recorder.output.length;
    await vscode.commands.executeCommand('livefix.applyDefinition', {
      uri: document.uri.toString(),
      path: pricingPath,
      module: 'pricing',
      qualname: 'total',
      source: 'def total(price, quantity):\n    return price *\n',
    });
    // The notification lands in the notification center (toasts stay hidden in a test host).
    await vscode.commands.executeCommand('notifications.showList');
    await visible('.notifications-center', 'invalid syntax');
    await screenshot('broken-fix-refused');
    // Once: VS Code shows the adapter's error (showUser), the extension does not repeat it.
    assert.equal(await count('.notifications-center .notification-list-item', 'invalid syntax'), 1);
    await waitFor('two more ticks printed after the refusal', () =>
      (recorder.output.slice(outputBeforeBroken).join('').match(/tick \d+ total=\d+\n/g) ?? []).length >= 2 ? true : undefined,
    );
    assert.equal(recorder.latestTotal(outputBeforeBroken), '5', 'the refused fix changed nothing in the process');
    assert.equal(recorder.events.slice(eventsBeforeBroken).filter((e) => e.event === 'livefix/applied').length, 0);
    await log('a broken definition was refused with a notification; the program still prints total=5');

    // -- applyMode onSave: saving the module reloads it in the process ------------------------
    await vscode.workspace.getConfiguration('livefix', folder.uri).update('applyMode', 'onSave', vscode.ConfigurationTarget.Workspace);
    await vscode.window.showTextDocument(document);
    const doubled = await vscode.window.activeTextEditor!.edit((edit) => {
      const at = document.getText().split('\n').findIndex((text) => text.includes('return price'));
      edit.replace(new vscode.Range(at, 0, at, document.lineAt(at).text.length), '    return price * quantity * 2');
    });
    assert.ok(doubled);
    const outputBeforeSave = recorder.output.length;
    assert.ok(await document.save());
    const reloaded = await waitFor('the livefix/applied event of the reload on save', () =>
      recorder.events.find((e) => e.event === 'livefix/applied' && e.body?.action === 'reload'),
    );
    assert.deepEqual(reloaded.body.applied.map((a: any) => [a.module, a.qualname]), [['pricing', 'total']]);
    await waitFor('the program to print total=30 after the save', () => (recorder.latestTotal(outputBeforeSave) === '30' ? true : undefined));
    await log('applyMode onSave: saving pricing.py reloaded it; the program prints total=30');
    await screenshot('reloaded-on-save');

    // -- the language server follows its setting: off, then on again ----------------------------
    const hasApplyAction = async () =>
      ((await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', document.uri, new vscode.Range(line, 8, line, 8))) ?? []).some(
        (action) => action.title === 'Apply `total` to running process',
      );
    const settings = vscode.workspace.getConfiguration('livefix', folder.uri);
    await settings.update('languageServer.enabled', false, vscode.ConfigurationTarget.Workspace);
    await waitFor('the apply code action to go with the language server', async () => ((await hasApplyAction()) ? undefined : true));
    await settings.update('languageServer.enabled', true, vscode.ConfigurationTarget.Workspace);
    await waitFor('the language server to start again', async () => ((await hasApplyAction()) ? true : undefined));
    await log('livefix.languageServer.enabled: off stops the server, on starts it again');
    await vscode.commands.executeCommand('workbench.action.files.revert');
  } catch (error) {
    await screenshot('failure').catch(() => undefined); // while the session still runs
    throw error;
  } finally {
    if (session) {
      const ended = new Promise<void>((resolve) => {
        const listener = vscode.debug.onDidTerminateDebugSession((s) => {
          if (s.id === session!.id) {
            listener.dispose();
            resolve();
          }
        });
      });
      await vscode.debug.stopDebugging(session);
      await ended;
    }
  }
  try {
    await breakpointThenFix(folder, recorder);
    await childProcesses(folder, recorder);
  } finally {
    recorder.dispose();
  }
}

/**
 * Child processes: with `subProcess: true` the child gets its own livefix session (VS Code
 * attaches it to the parent's adapter); a fix goes to every process of the launch, and each
 * answers for itself with a line in the debug console.
 */
async function childProcesses(folder: vscode.WorkspaceFolder, recorder: AdapterRecorder): Promise<void> {
  const stopFile = path.join(folder.uri.fsPath, '.stop-family');
  const sessions: vscode.DebugSession[] = [];
  const ended = new Set<string>();
  const listeners = [
    vscode.debug.onDidStartDebugSession((s) => s.type === 'livefix' && sessions.push(s)),
    vscode.debug.onDidTerminateDebugSession((s) => ended.add(s.id)),
  ];
  try {
    const from = recorder.output.length;
    const eventsFrom = recorder.events.length;
    assert.ok(
      await vscode.debug.startDebugging(folder, {
        type: 'livefix',
        name: 'family (livefix)',
        request: 'launch',
        program: path.join(folder.uri.fsPath, 'family.py'),
        args: [stopFile],
        cwd: folder.uri.fsPath,
        console: 'internalConsole',
        subProcess: true,
        livefix: { approval: 'never' },
      }),
    );
    const child = await waitFor('a livefix session for the child process', () => sessions.find((s) => s.parentSession !== undefined));
    assert.equal(child.parentSession?.name, 'family (livefix)');
    for (const role of ['parent', 'child']) {
      await waitFor(`the ${role} to print rate=0`, () => (recorder.latest(from, new RegExp(`^${role} tick \\d+ rate=(\\d+)$`)) === '0' ? true : undefined));
    }
    await log(`two sessions: "${sessions.map((s) => s.name).join('", "')}"; both processes print rate=0`);

    const applyFrom = recorder.output.length;
    await vscode.commands.executeCommand('livefix.applyDefinition', {
      uri: vscode.Uri.file(path.join(folder.uri.fsPath, 'discount.py')).toString(),
      path: path.join(folder.uri.fsPath, 'discount.py'),
      module: 'discount',
      qualname: 'rate',
      source: 'def rate():\n    return 10\n',
    });
    for (const role of ['parent', 'child']) {
      await waitFor(`the ${role} to print rate=10`, () =>
        recorder.latest(applyFrom, new RegExp(`^${role} tick \\d+ rate=(\\d+)$`)) === '10' ? true : undefined,
      );
    }
    const applied = recorder.events.slice(eventsFrom).filter((e) => e.event === 'livefix/applied');
    assert.equal(applied.length, 2, 'one livefix/applied event per process');
    assert.deepEqual(applied.map((e) => e.body.generation), [1, 1]);
    await vscode.commands.executeCommand('workbench.debug.action.focusRepl');
    await log('the fix reached both processes: each printed rate=10 and sent its own livefix/applied');
    await screenshot('child-processes');
  } catch (error) {
    await screenshot('failure-child-processes').catch(() => undefined);
    throw error;
  } finally {
    await vscode.workspace.fs.writeFile(vscode.Uri.file(stopFile), new Uint8Array());
    await waitFor('both family sessions to end', () => (sessions.length > 0 && sessions.every((s) => ended.has(s.id)) ? true : undefined)).catch(
      async () => {
        for (const s of sessions) await vscode.debug.stopDebugging(s);
      },
    );
    for (const listener of listeners) listener.dispose();
  }
}

/**
 * Breakpoint-then-fix: stopped at a breakpoint inside `total`, apply the fix, continue. The
 * paused call finishes on the old code (the apply reports the thread in its impact), the
 * next call runs the new code.
 */
async function breakpointThenFix(folder: vscode.WorkspaceFolder, recorder: AdapterRecorder): Promise<void> {
  const pricing = vscode.Uri.file(path.join(folder.uri.fsPath, 'pricing.py'));
  const buggy = '"""Prices of the sample shop."""\n\n\ndef total(price, quantity):\n    return price  # the bug: the quantity is ignored\n';
  await vscode.workspace.fs.writeFile(pricing, new TextEncoder().encode(buggy));
  const returnLine = 4;
  const stopFile = path.join(folder.uri.fsPath, '.stop-breakpoint');
  let session: vscode.DebugSession | undefined;
  const breakpoint = new vscode.SourceBreakpoint(new vscode.Location(pricing, new vscode.Position(returnLine, 0)));
  try {
    const from = recorder.output.length;
    const eventsFrom = recorder.events.length;
    const started = new Promise<vscode.DebugSession>((resolve) => {
      const listener = vscode.debug.onDidStartDebugSession((s) => {
        listener.dispose();
        resolve(s);
      });
    });
    assert.ok(
      await vscode.debug.startDebugging(folder, {
        type: 'livefix',
        name: 'breakpoint (livefix)',
        request: 'launch',
        program: path.join(folder.uri.fsPath, 'app.py'),
        args: [stopFile],
        cwd: folder.uri.fsPath,
        console: 'internalConsole',
        livefix: { approval: 'never' },
      }),
    );
    session = await started;
    await waitFor('the program to print total=5', () => (recorder.latestTotal(from) === '5' ? true : undefined));
    vscode.debug.addBreakpoints([breakpoint]);
    const stopped = await waitFor('the program to stop at the breakpoint in total', () =>
      recorder.events.slice(eventsFrom).find((e) => e.event === 'stopped' && e.body?.reason === 'breakpoint'),
    );
    vscode.debug.removeBreakpoints([breakpoint]);
    const document = await vscode.workspace.openTextDocument(pricing);
    await vscode.window.showTextDocument(document);
    await screenshot('stopped-at-breakpoint');

    const eventsBeforeApply = recorder.events.length;
    await vscode.commands.executeCommand('livefix.applyDefinition', {
      uri: pricing.toString(),
      path: pricing.fsPath,
      module: 'pricing',
      qualname: 'total',
      source: 'def total(price, quantity):\n    return price * quantity\n',
    });
    const applied = await waitFor('the apply while paused', () =>
      recorder.events.slice(eventsBeforeApply).find((e) => e.event === 'livefix/applied'),
    );
    assert.deepEqual(
      applied.body.impact.threads.map((t: any) => [t.id, t.qualnames]),
      [[stopped.body.threadId, ['pricing.total']]],
      'the paused thread is reported as executing the old total',
    );
    await waitFor('the status bar to show generation 1', async () => ((await statusBarText()).includes('gen 1') ? true : undefined));
    await screenshot('fixed-while-paused');

    const outputBeforeContinue = recorder.output.length;
    await vscode.commands.executeCommand('workbench.action.debug.continue');
    await waitFor('the next call to print total=15', () => (recorder.latestTotal(outputBeforeContinue) === '15' ? true : undefined));
    const ticks = recorder.output.slice(outputBeforeContinue).join('').match(/^tick \d+ total=\d+$/gm) ?? [];
    assert.match(ticks[0] ?? '', /total=5$/, 'the paused call finished on the old code');
    await log(`breakpoint-then-fix: the paused call printed "${ticks[0]}", the next ones total=15`);
  } catch (error) {
    await log(`breakpoint scenario failed: ${error instanceof Error ? error.message : String(error)}`).catch(() => undefined);
    await screenshot('failure-breakpoint').catch(() => undefined);
    throw error;
  } finally {
    vscode.debug.removeBreakpoints([breakpoint]);
    if (session) {
      const ended = new Promise<void>((resolve) => {
        const listener = vscode.debug.onDidTerminateDebugSession((s) => {
          if (s.id === session!.id) {
            listener.dispose();
            resolve();
          }
        });
      });
      await vscode.debug.stopDebugging(session); // it may be paused: the stop file would not be seen
      await ended;
    }
  }
}
