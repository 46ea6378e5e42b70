/**
 * What the extension's logic needs from the editor, as plain TypeScript types.
 *
 * `vscodeHost.ts` implements `Host` with the VS Code API (the only module besides
 * `extension.ts` that imports `vscode`); unit tests implement it with recorders. Nothing
 * here imports `vscode`, so every module that only takes a `Host` runs under node's test
 * runner.
 */

/** A debug session as the logic sees it (a thin view of `vscode.DebugSession`). */
export interface SessionRef {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  /** The parent session's id (child processes of a launch), if any. */
  readonly parentId?: string;
  readonly configuration: Readonly<Record<string, unknown>>;
  /** Sends a custom DAP request; rejects with the adapter's one-line message on failure. */
  customRequest(command: string, args?: unknown): Promise<unknown>;
}

export interface PickItem<T> {
  label: string;
  description?: string;
  detail?: string;
  value: T;
}

export interface CodeActionRef {
  title: string;
  command?: string;
  arguments?: unknown[];
}

export interface EditorRef {
  uri: string;
  /** File system path ('' for untitled documents). */
  path: string;
  languageId: string;
  /** 0-based cursor position. */
  line: number;
  character: number;
  text: string;
}

export interface StatusItemState {
  text: string;
  tooltip: string;
  command: string;
}

export interface InputRequest {
  title?: string;
  prompt: string;
  /** Prefilled answer. */
  value?: string;
  /** A message while the text is not acceptable, undefined when it is. */
  validate?: (text: string) => string | undefined;
}

export interface Host {
  /** Appends a line to the extension's one output channel. */
  log(message: string): void;
  showError(message: string): void;
  showInfo(message: string): void;
  showWarning(message: string): void;
  /** A modal with one accepting button; resolves true when the developer chose it. */
  confirm(message: string, detail: string, accept: string): Promise<boolean>;
  /** A modal with several buttons; resolves to the chosen button's label, undefined when cancelled. */
  choose(message: string, detail: string, buttons: string[]): Promise<string | undefined>;
  /** An input box; undefined when cancelled. */
  input(request: InputRequest): Promise<string | undefined>;
  pick<T>(items: PickItem<T>[], placeholder: string): Promise<T | undefined>;
  /** Writes to the debug console (reports, per-process summaries). */
  debugConsole(line: string): void;
  /** Opens a side-by-side diff of two read-only texts. */
  showDiff(title: string, left: { name: string; text: string }, right: { name: string; text: string }): Promise<void>;
  /** Opens a read-only document (`name` ends with its extension, e.g. `.txt`). */
  showReadOnly(name: string, text: string): Promise<void>;
  setStatus(state: StatusItemState | undefined): void;
  /** The second status item: the latest fix's live evidence (watching, then its report). */
  setEvidenceStatus(state: StatusItemState | undefined): void;
  activeEditor(): EditorRef | undefined;
  /** The debug session selected in the debug toolbar / call stack, if any. */
  activeSession(): SessionRef | undefined;
  /** The code actions the language servers offer at a position (VS Code's executeCodeActionProvider). */
  codeActionsAt(uri: string, line: number, character: number): Promise<CodeActionRef[]>;
  executeCommand(command: string, ...args: unknown[]): Promise<unknown>;
  readFile(path: string): Promise<string | undefined>;
  /** Shows `title` as a notification with a progress bar while `task` runs. */
  withProgress<T>(title: string, task: () => Promise<T>): Promise<T>;
  /** Starts a debug session as the child of `parentId` (a child process of its program). */
  startChildSession(parentId: string, configuration: Record<string, unknown>): Promise<boolean>;
}
