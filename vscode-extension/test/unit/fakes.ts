/**
 * Test doubles for the editor (the one thing these unit tests cannot run): a Host that
 * records what the developer would see, and debug sessions that answer like the adapter,
 * including the failed-response messages VS Code's tracker would hand over.
 */

import type { CodeActionRef, EditorRef, Host, InputRequest, PickItem, SessionRef, StatusItemState } from '../../src/host';
import type { FailedResponses } from '../../src/requests';

export class RecordingHost implements Host {
  logs: string[] = [];
  errors: string[] = [];
  infos: string[] = [];
  warnings: string[] = [];
  console: string[] = [];
  confirms: { message: string; detail: string }[] = [];
  chooses: { message: string; detail: string; buttons: string[] }[] = [];
  inputs: InputRequest[] = [];
  picks: { placeholder: string; labels: string[] }[] = [];
  diffs: { title: string; left: string; right: string }[] = [];
  documents: { name: string; text: string }[] = [];
  commands: { command: string; args: unknown[] }[] = [];
  status: StatusItemState | undefined;
  /** Every state the evidence item took, in order (undefined: hidden). */
  evidenceStatuses: (StatusItemState | undefined)[] = [];
  /** Answers to confirm(), in order. */
  confirmAnswers: boolean[] = [];
  /** Answers to choose() (a button label; undefined: cancelled), in order. */
  chooseAnswers: (string | undefined)[] = [];
  /** Answers to input() (undefined: cancelled), in order; each must pass the request's validation. */
  inputAnswers: (string | undefined)[] = [];
  /** Chooses among pick() items by label (first match of a substring), in order. */
  pickAnswers: string[] = [];
  editor: EditorRef | undefined;
  active: SessionRef | undefined;
  actions: CodeActionRef[] = [];
  files = new Map<string, string>();

  log(message: string): void {
    this.logs.push(message);
  }
  showError(message: string): void {
    this.errors.push(message);
  }
  showInfo(message: string): void {
    this.infos.push(message);
  }
  showWarning(message: string): void {
    this.warnings.push(message);
  }
  async confirm(message: string, detail: string): Promise<boolean> {
    this.confirms.push({ message, detail });
    return this.confirmAnswers.shift() ?? false;
  }
  async choose(message: string, detail: string, buttons: string[]): Promise<string | undefined> {
    this.chooses.push({ message, detail, buttons });
    return this.chooseAnswers.shift();
  }
  async input(request: InputRequest): Promise<string | undefined> {
    this.inputs.push(request);
    const answer = this.inputAnswers.shift();
    const problem = answer === undefined ? undefined : request.validate?.(answer);
    if (problem !== undefined) {
      throw new Error(`test: the input box would not accept ${JSON.stringify(answer)}: ${problem}`);
    }
    return answer;
  }
  async pick<T>(items: PickItem<T>[], placeholder: string): Promise<T | undefined> {
    this.picks.push({ placeholder, labels: items.map((item) => item.label) });
    const wanted = this.pickAnswers.shift();
    return wanted === undefined ? undefined : items.find((item) => item.label.includes(wanted))?.value;
  }
  debugConsole(line: string): void {
    this.console.push(line);
  }
  async showDiff(title: string, left: { text: string }, right: { text: string }): Promise<void> {
    this.diffs.push({ title, left: left.text, right: right.text });
  }
  async showReadOnly(name: string, text: string): Promise<void> {
    this.documents.push({ name, text });
  }
  setStatus(state: StatusItemState | undefined): void {
    this.status = state;
  }
  setEvidenceStatus(state: StatusItemState | undefined): void {
    this.evidenceStatuses.push(state);
  }
  get evidenceStatus(): StatusItemState | undefined {
    return this.evidenceStatuses.at(-1);
  }
  activeEditor(): EditorRef | undefined {
    return this.editor;
  }
  activeSession(): SessionRef | undefined {
    return this.active;
  }
  async codeActionsAt(): Promise<CodeActionRef[]> {
    return this.actions;
  }
  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    this.commands.push({ command, args });
    return undefined;
  }
  async readFile(path: string): Promise<string | undefined> {
    return this.files.get(path);
  }
  progress: string[] = [];
  async withProgress<T>(title: string, task: () => Promise<T>): Promise<T> {
    this.progress.push(title);
    return task();
  }
  children: { parentId: string; configuration: Record<string, unknown> }[] = [];
  async startChildSession(parentId: string, configuration: Record<string, unknown>): Promise<boolean> {
    this.children.push({ parentId, configuration });
    return true;
  }
}

/** `showUser` (default true, as livefix's adapter sends it) makes VS Code show the error itself. */
export type Answer = { body: unknown } | { error: { kind: string; message: string; [key: string]: unknown }; showUser?: boolean };

/**
 * A session whose adapter answers each request with the next scripted answer for its
 * command. Failures go through `failures.record` first, as the tracker does in VS Code,
 * then reject with the one-line message only, as `customRequest` does.
 */
export class ScriptedSession implements SessionRef {
  readonly type = 'livefix';
  readonly configuration = {};
  requests: { command: string; args: any }[] = [];
  private readonly answers = new Map<string, Answer[]>();

  constructor(
    readonly id: string,
    readonly name: string,
    private readonly failures: FailedResponses,
    readonly parentId?: string,
  ) {}

  answer(command: string, ...answers: Answer[]): this {
    this.answers.set(command, [...(this.answers.get(command) ?? []), ...answers]);
    return this;
  }

  async customRequest(command: string, args?: unknown): Promise<unknown> {
    this.requests.push({ command, args });
    const answer = this.answers.get(command)?.shift();
    if (!answer) {
      throw new Error(`test: no scripted answer for ${command}`);
    }
    if ('error' in answer) {
      this.failures.record(this.id, {
        type: 'response',
        command,
        success: false,
        message: answer.error.message,
        body: { error: { id: 1, format: answer.error.message, showUser: answer.showUser ?? true }, livefix: answer.error },
      });
      throw new Error(answer.error.message);
    }
    return answer.body;
  }
}

export function changeBody(generation: number, report: string, extra: object = {}) {
  return {
    generation,
    applied: [],
    impact: { threads: [], signatureChanges: [], removals: [] },
    report,
    dryRun: false,
    warnings: [],
    ...extra,
  };
}

/**
 * The evidence watcher's clock for tests: `sleep` resolves at once (nothing sleeps to
 * synchronise) and advances the clock by the time asked, so deadlines still pass.
 */
export class FakeClock {
  seconds = 1764000000;
  sleeps: number[] = [];
  now = (): number => this.seconds;
  /** Runs at each sleep with the number of sleeps so far (to end a session mid-poll). */
  onSleep: (count: number) => void = () => undefined;
  sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.seconds += ms / 1000;
    this.onSleep(this.sleeps.length);
  };
}

export function figures(calls: number, errors: number, p99Ms: number | null, extra: object = {}) {
  return { calls, errors, errorRate: calls ? errors / calls : 0, p50Ms: p99Ms === null ? null : p99Ms / 2, p99Ms, errorTypes: null, since: 1764000000, running: 0, ...extra };
}
