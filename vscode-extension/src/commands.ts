/**
 * What each livefix command does, and how the extension reacts to sessions, events and
 * saves. Editor access goes through `Host`; the wiring to VS Code is in extension.ts.
 */

import type { Host, SessionRef } from './host';
import { askCanary, withCanary } from './canary';
import { canaryNotice, formatEvidence, formatWatch, validateWatchTarget } from './evidence';
import type { EvidenceWatcher } from './evidenceWatcher';
import { formatFrames } from './frames';
import { generationDiff, historyItems, type HistoryChoice } from './history';
import * as protocol from './protocol';
import { Requests, type Outcome, LivefixRequestError } from './requests';
import { SessionRegistry } from './sessions';
import type { ApplyMode } from './settings';
import { LivefixState } from './state';
import { statusItem } from './statusBar';

/** The command ids contributed in package.json, in one place. */
export const COMMANDS = {
  applyAtCursor: 'livefix.applyAtCursor',
  reloadModified: 'livefix.reloadModified',
  rollback: 'livefix.rollback',
  showHistory: 'livefix.showHistory',
  captureFrames: 'livefix.captureFrames',
  persistRunning: 'livefix.persistRunning',
  applyWithCanary: 'livefix.applyWithCanary',
  watchFunction: 'livefix.watchFunction',
  stopWatching: 'livefix.stopWatching',
  applyDefinition: protocol.APPLY_DEFINITION_COMMAND,
  reloadModule: protocol.RELOAD_MODULE_COMMAND,
} as const;

const NO_SESSION =
  'livefix: no livefix debug session to send this to. Start one with the "Python (livefix)" configuration ' +
  '(or select one in the Call Stack view when several launches run).';

export interface ControllerDeps {
  host: Host;
  sessions: SessionRegistry;
  requests: Requests;
  state: LivefixState;
  applyMode: () => ApplyMode;
  /** Forwards a `livefix/applied` body to the language server (no-op when it is off). */
  notifyServer: (body: protocol.ChangeResultBody) => void;
  /** The `livefix.canary` setting: sent with every apply and reload (null: none). */
  canary: () => protocol.CanaryArgs | null;
  /** Follows the live evidence of each fix the process watches. */
  evidence: EvidenceWatcher;
}

export class Controller {
  private statusRefresh = 0;

  constructor(private readonly deps: ControllerDeps) {}

  private get host(): Host {
    return this.deps.host;
  }

  private targets(): SessionRef[] {
    return this.deps.sessions.targets(this.host.activeSession());
  }

  // -- changes ---------------------------------------------------------------------------

  /** The language server's "Apply `f` to running process" code action lands here. */
  async applyDefinition(args: protocol.ApplyDefinitionCommandArgs, canary?: protocol.CanaryArgs): Promise<Outcome<protocol.ChangeResultBody>[]> {
    const change: protocol.ChangeArgs = { source: args.source, qualname: args.qualname };
    if (args.module) change.module = args.module;
    if (args.path) change.path = args.path;
    if (typeof args.line === 'number') change.line = args.line;
    return this.change(protocol.APPLY, { changes: [change], ...(canary ? { canary } : {}) } satisfies protocol.ApplyArguments);
  }

  async reloadModule(args: protocol.ReloadModuleCommandArgs): Promise<Outcome<protocol.ChangeResultBody>[]> {
    return this.change(protocol.RELOAD, { modules: [args.module] } satisfies protocol.ReloadArguments);
  }

  async reloadModified(): Promise<Outcome<protocol.ChangeResultBody>[]> {
    return this.change(protocol.RELOAD, {} satisfies protocol.ReloadArguments);
  }

  async rollback(to?: number, only?: SessionRef): Promise<Outcome<protocol.ChangeResultBody>[]> {
    const args: protocol.RollbackArguments = to === undefined ? {} : { to };
    return this.change(protocol.ROLLBACK, args, only ? [only] : undefined);
  }

  private async change(command: string, args: object, targets = this.targets()): Promise<Outcome<protocol.ChangeResultBody>[]> {
    if (this.deps.applyMode() === 'never') {
      this.host.showInfo('livefix: "livefix.applyMode" is "never": this editor does not change running processes.');
      return [];
    }
    if (targets.length === 0) {
      this.host.showError(NO_SESSION);
      return [];
    }
    args = withCanary(command, args, this.deps.canary());
    this.host.log(`${command} -> ${targets.map((session) => session.name).join(', ')}: ${JSON.stringify(args).slice(0, 500)}`);
    const outcomes = await this.deps.requests.sendToAll<protocol.ChangeResultBody>(targets, command, args);
    this.deps.requests.report(outcomes, command);
    for (const outcome of outcomes) {
      const evidence = 'body' in outcome && !outcome.body.dryRun ? outcome.body.evidence : undefined;
      if ('body' in outcome && evidence) {
        // Not awaited: the window lasts (30 s by default) and the command is done.
        const { session, body } = outcome;
        this.deps.evidence
          .follow(session, body.generation, evidence)
          .catch((error) => this.host.log(`[${session.name}] following the evidence of generation ${body.generation} failed: ${error instanceof Error ? error.stack : error}`));
      }
    }
    return outcomes;
  }

  /** Apply the definition at the cursor: the language server's code action for that spot. */
  async applyAtCursor(): Promise<void> {
    const definition = await this.definitionAtCursor();
    if (definition) await this.applyDefinition(definition);
  }

  /** The same, judged by a canary: asks its window and error-rate ceiling first. */
  async applyWithCanary(): Promise<void> {
    const definition = await this.definitionAtCursor();
    if (!definition) return;
    const canary = await askCanary(this.host, this.deps.canary());
    if (canary) await this.applyDefinition(definition, canary);
  }

  private async definitionAtCursor(): Promise<protocol.ApplyDefinitionCommandArgs | undefined> {
    const action = await this.codeActionAtCursor(protocol.APPLY_DEFINITION_COMMAND);
    if (action === 'no editor') return undefined;
    if (!action) {
      this.host.showInfo('livefix: put the cursor inside a function or method to apply it to the running process.');
      return undefined;
    }
    return action as protocol.ApplyDefinitionCommandArgs;
  }

  /** Write what runs back into the file: the server's "Persist running definition" action. */
  async persistRunning(): Promise<void> {
    const action = await this.codeActionAtCursor(protocol.PERSIST_COMMAND);
    if (action === 'no editor') return;
    if (!action) {
      this.host.showInfo('livefix: the running process has no other version of the definition at the cursor.');
      return;
    }
    await this.host.executeCommand(protocol.PERSIST_COMMAND, action);
  }

  private async codeActionAtCursor(command: string): Promise<unknown | undefined | 'no editor'> {
    const editor = this.host.activeEditor();
    if (!editor || editor.languageId !== 'python') {
      this.host.showError('livefix: open a Python file and put the cursor in a definition first.');
      return 'no editor';
    }
    const actions = await this.host.codeActionsAt(editor.uri, editor.line, editor.character);
    return actions.find((action) => action.command === command)?.arguments?.[0];
  }

  // -- views -------------------------------------------------------------------------

  /** One process to look at: the only one, or the developer's pick among the launch's. */
  private async oneSession(purpose: string): Promise<SessionRef | undefined> {
    const targets = this.targets();
    if (targets.length === 0) {
      this.host.showError(NO_SESSION);
      return undefined;
    }
    if (targets.length === 1) {
      return targets[0];
    }
    return this.host.pick(
      targets.map((session) => ({ label: session.name, description: session.parentId ? 'child process' : 'launch', value: session })),
      `Which process ${purpose}?`,
    );
  }

  async showHistory(): Promise<void> {
    const session = await this.oneSession('should show its history');
    if (!session) return;
    let history: protocol.HistoryBody;
    try {
      history = await this.deps.requests.send<protocol.HistoryBody>(session, protocol.HISTORY, {});
    } catch (error) {
      this.failed(error);
      return;
    }
    const launch = this.deps.sessions.rootOf(session);
    this.deps.state.setGeneration(launch, history.generation);
    const choice = await this.host.pick<HistoryChoice>(historyItems(history), `livefix history of "${session.name}" (running generation ${history.generation})`);
    if (!choice) return;
    const target = choice.kind === 'asLoaded' ? 0 : choice.generation.generation;
    const actions: { label: string; description?: string; value: 'diff' | 'rollback' | 'evidence' }[] = [];
    if (choice.kind === 'generation') {
      actions.push({ label: '$(diff) Show the changes of this generation', value: 'diff' });
      if (choice.generation.evidence) {
        actions.push({ label: '$(pulse) Show the live evidence of this generation', description: choice.generation.evidence.report, value: 'evidence' });
      }
    }
    if (target !== history.generation) {
      actions.push({
        label: `$(discard) Roll back to generation ${target}`,
        description: target === 0 ? 'undo every change' : 'undo the generations after it',
        value: 'rollback',
      });
    }
    const action = actions.length === 1 ? actions[0].value : await this.host.pick(actions, `Generation ${target}`);
    if (action === 'diff' && choice.kind === 'generation') {
      const sides = await generationDiff(launch, choice.generation, this.deps.state, (path) => this.host.readFile(path));
      await this.host.showDiff(sides.title, sides.left, sides.right);
    } else if (action === 'evidence' && choice.kind === 'generation' && choice.generation.evidence) {
      await this.host.showReadOnly(`livefix-evidence-${choice.generation.generation}.txt`, formatEvidence(session.name, choice.generation.evidence));
    } else if (action === 'rollback') {
      await this.rollback(target, session);
    }
  }

  /**
   * Count a function's calls, errors and latency (`livefix/watch`), following it across
   * fixes; shows the figures of everything watched. An empty answer only shows them.
   */
  async watchFunction(): Promise<void> {
    const session = await this.oneSession('should watch the function');
    if (!session) return;
    const target = await this.host.input({
      title: 'livefix: watch a function',
      prompt: 'module:qualname to count (calls, errors, latency) until you stop watching; empty: show what is watched',
      value: await this.functionAtCursor(),
      validate: validateWatchTarget,
    });
    if (target === undefined) return;
    const args: protocol.WatchArguments = target.trim() ? { targets: [target.trim()] } : {};
    await this.showWatched(session, args);
  }

  async stopWatching(): Promise<void> {
    const session = await this.oneSession('should stop watching');
    if (!session) return;
    await this.showWatched(session, { stop: true } satisfies protocol.WatchArguments);
  }

  private async showWatched(session: SessionRef, args: protocol.WatchArguments): Promise<void> {
    try {
      const body = await this.deps.requests.send<protocol.WatchBody>(session, protocol.WATCH, args);
      await this.host.showReadOnly(`livefix-watch-${session.name.replace(/[^\w.-]+/g, '_')}.txt`, formatWatch(session.name, body, new Date()));
    } catch (error) {
      this.failed(error);
    }
  }

  /** "module:qualname" of the definition at the cursor, as the language server names it ('' if none). */
  private async functionAtCursor(): Promise<string> {
    const editor = this.host.activeEditor();
    if (!editor || editor.languageId !== 'python') return '';
    const actions = await this.host.codeActionsAt(editor.uri, editor.line, editor.character);
    const apply = actions.find((action) => action.command === protocol.APPLY_DEFINITION_COMMAND)?.arguments?.[0] as
      | protocol.ApplyDefinitionCommandArgs
      | undefined;
    return apply?.module && apply.qualname ? `${apply.module}:${apply.qualname}` : '';
  }

  async captureFrames(): Promise<void> {
    const session = await this.oneSession('should show its threads');
    if (!session) return;
    try {
      const body = await this.deps.requests.send<protocol.CaptureFramesBody>(session, protocol.CAPTURE_FRAMES, {
        locals: true,
      } satisfies protocol.CaptureFramesArguments);
      await this.host.showReadOnly(`livefix-frames-${session.name.replace(/[^\w.-]+/g, '_')}.txt`, formatFrames(session.name, body, new Date()));
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    if (error instanceof LivefixRequestError) {
      if (!error.shownByEditor) this.host.showError(`livefix: ${error.message}`);
      this.host.log(`[${error.session.name}] ${error.command} failed (${error.kind}): ${error.message}`);
    } else {
      throw error;
    }
  }

  // -- reactions -----------------------------------------------------------------------

  sessionStarted(session: SessionRef): void {
    this.deps.sessions.add(session);
    void this.refreshStatus();
  }

  sessionEnded(sessionId: string): void {
    const session = this.deps.sessions.get(sessionId);
    if (session && this.deps.sessions.rootOf(session) === session.id) {
      this.deps.state.forget(session.id);
    }
    this.deps.evidence.sessionEnded(sessionId);
    this.deps.sessions.remove(sessionId);
    void this.refreshStatus();
  }

  /**
   * debugpy before `startDebugging` support (and clients without it) reports a child
   * process with the `debugpyAttach` event: attach a child session to the parent's adapter.
   * Newer debugpy asks VS Code directly (`startDebugging`) and needs nothing from us.
   */
  async childProcess(parentId: string, body: Record<string, unknown>): Promise<void> {
    const configuration = { ...body, type: 'livefix', request: 'attach' };
    this.host.log(`child process ${String(body['subProcessId'])} of ${parentId}: attaching`);
    if (!(await this.host.startChildSession(parentId, configuration))) {
      this.host.showError(`livefix: could not attach to child process ${String(body['subProcessId'])}.`);
    }
  }

  /** Every `livefix/applied` event: remember what runs, tell the server, update the status bar. */
  async applied(sessionId: string, body: protocol.ChangeResultBody): Promise<void> {
    const session = this.deps.sessions.get(sessionId);
    const launch = session ? this.deps.sessions.rootOf(session) : sessionId;
    this.deps.state.onApplied(launch, body);
    this.deps.notifyServer(body);
    await this.refreshStatus();
  }

  /**
   * A `livefix/canary` event: the verdict as a notification (a warning when the fix was, or
   * should have been, rolled back). A canary's rollback sends no `livefix/applied` event, so
   * the generation that runs now is asked (`livefix/history`) and the state, the language
   * server and the status bar are told as if it had.
   */
  async canaryVerdict(sessionId: string, verdict: protocol.CanaryVerdict): Promise<void> {
    const session = this.deps.sessions.get(sessionId);
    const notice = canaryNotice(session?.name ?? '', verdict);
    if (notice.severity === 'warning') this.host.showWarning(notice.message);
    else this.host.showInfo(notice.message);
    this.host.log(`[${session?.name ?? sessionId}] canary ${verdict.outcome}: ${verdict.report}`);
    if (!session) return;
    this.deps.evidence.verdict(session, verdict);
    if (verdict.outcome !== 'rolledBack') return;
    const launch = this.deps.sessions.rootOf(session);
    let now = verdict.generation - 1;
    try {
      now = (await this.deps.requests.send<protocol.HistoryBody>(session, protocol.HISTORY, {})).generation;
    } catch (error) {
      this.host.log(`[${session.name}] ${protocol.HISTORY} after the canary's rollback failed: ${error instanceof Error ? error.message : error}`);
    }
    await this.applied(sessionId, this.deps.state.rolledBackBody(launch, verdict.generation, now));
  }

  /**
   * With `livefix.applyMode: onSave`, a saved Python file that a debugged process has
   * loaded (and that now differs from what runs there) is reloaded in that process.
   */
  async saved(path: string, languageId: string): Promise<void> {
    if (languageId === 'python' && this.deps.applyMode() === 'onSave') {
      for (const session of this.deps.sessions.all()) {
        let status: protocol.StatusBody;
        try {
          status = await this.deps.requests.send<protocol.StatusBody>(session, protocol.STATUS, {});
        } catch (error) {
          this.host.log(`[${session.name}] ${protocol.STATUS} failed: ${error instanceof Error ? error.message : error}`);
          continue;
        }
        const modules = status.modules.filter((module) => samePath(module.path, path)).map((module) => module.name);
        if (modules.length) {
          await this.change(protocol.RELOAD, { modules } satisfies protocol.ReloadArguments, [session]);
        }
      }
    }
    await this.refreshStatus();
  }

  async refreshStatus(): Promise<void> {
    // Refreshes overlap (events, saves, session changes) and each awaits file reads: only
    // the latest one may write the status bar, or a slow earlier one would show stale counts.
    const mine = ++this.statusRefresh;
    const targets = this.targets();
    if (targets.length === 0) {
      this.host.setStatus(undefined);
      return;
    }
    const launch = this.deps.sessions.rootOf(targets[0]);
    const unpersisted = await this.deps.state.unpersisted(launch, (path) => this.host.readFile(path));
    if (mine !== this.statusRefresh) return;
    this.host.setStatus(statusItem(targets[0].name, this.deps.state.generation(launch), unpersisted));
  }
}

function samePath(a: string, b: string): boolean {
  // Windows paths differ in case and separators between the debuggee and the editor.
  const windows = /^[A-Za-z]:[\\/]/.test(a);
  return a === b || (windows && a.replace(/\\/g, '/').toLowerCase() === b.replace(/\\/g, '/').toLowerCase());
}
