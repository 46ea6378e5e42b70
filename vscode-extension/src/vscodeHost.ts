/**
 * The one thin module between the extension's logic and the VS Code API.
 *
 * Implements `Host` (host.ts) and the few registrations that need VS Code types (debug
 * adapter factory, tracker, language client). No decisions are made here: each function
 * translates between VS Code objects and the plain types the logic uses.
 */

import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import type { AdapterDescriptor } from './debugAdapter';
import type { CodeActionRef, EditorRef, Host, InputRequest, PickItem, SessionRef, StatusItemState } from './host';
import type { PythonExtensionQuery } from './interpreter';
import type { LanguageServerSpec } from './languageClient';

const SCHEME = 'livefix';

export class VSCodeHost implements Host, vscode.Disposable {
  private readonly output = vscode.window.createOutputChannel('livefix');
  private readonly status = vscode.window.createStatusBarItem('livefix.status', vscode.StatusBarAlignment.Left, 50);
  private readonly evidence = vscode.window.createStatusBarItem('livefix.evidence', vscode.StatusBarAlignment.Left, 49);
  private readonly documents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly disposables: vscode.Disposable[] = [this.output, this.status, this.evidence, this.changed];
  private counter = 0;
  /** The VS Code objects behind the SessionRefs handed out, for child sessions. */
  private readonly sessions = new Map<string, vscode.DebugSession>();

  constructor() {
    this.status.name = 'livefix';
    this.evidence.name = 'livefix evidence';
    // Read-only documents (history diffs, captured frames) served from memory.
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(SCHEME, {
        onDidChange: this.changed.event,
        provideTextDocumentContent: (uri) => this.documents.get(uri.toString()) ?? '',
      }),
    );
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }

  log(message: string): void {
    this.output.appendLine(`[${new Date().toISOString()}] ${message}`);
  }

  showError(message: string): void {
    this.log(`error shown: ${message}`);
    void vscode.window.showErrorMessage(message);
  }

  showInfo(message: string): void {
    void vscode.window.showInformationMessage(message);
  }

  showWarning(message: string): void {
    this.log(`warning shown: ${message}`);
    void vscode.window.showWarningMessage(message);
  }

  async confirm(message: string, detail: string, accept: string): Promise<boolean> {
    return (await vscode.window.showWarningMessage(message, { modal: true, detail }, accept)) === accept;
  }

  async choose(message: string, detail: string, buttons: string[]): Promise<string | undefined> {
    return vscode.window.showWarningMessage(message, { modal: true, detail }, ...buttons);
  }

  async input(request: InputRequest): Promise<string | undefined> {
    return vscode.window.showInputBox({
      title: request.title,
      prompt: request.prompt,
      value: request.value,
      ignoreFocusOut: true,
      validateInput: request.validate ? (text) => request.validate!(text) ?? null : undefined,
    });
  }

  async pick<T>(items: PickItem<T>[], placeholder: string): Promise<T | undefined> {
    const chosen = await vscode.window.showQuickPick(items, { placeHolder: placeholder, matchOnDescription: true, matchOnDetail: true });
    return chosen?.value;
  }

  debugConsole(line: string): void {
    vscode.debug.activeDebugConsole.appendLine(line);
  }

  private memoryDocument(name: string, text: string): vscode.Uri {
    // A fresh path each time: VS Code caches virtual documents by URI.
    const uri = vscode.Uri.from({ scheme: SCHEME, path: `/${++this.counter}/${name}` });
    this.documents.set(uri.toString(), text);
    return uri;
  }

  async showDiff(title: string, left: { name: string; text: string }, right: { name: string; text: string }): Promise<void> {
    const leftUri = this.memoryDocument(left.name, left.text);
    const rightUri = this.memoryDocument(right.name, right.text);
    await vscode.commands.executeCommand('vscode.diff', leftUri, rightUri, title, { preview: true });
  }

  async showReadOnly(name: string, text: string): Promise<void> {
    const document = await vscode.workspace.openTextDocument(this.memoryDocument(name, text));
    await vscode.window.showTextDocument(document, { preview: true });
  }

  setStatus(state: StatusItemState | undefined): void {
    show(this.status, state);
  }

  setEvidenceStatus(state: StatusItemState | undefined): void {
    show(this.evidence, state);
  }

  activeEditor(): EditorRef | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return undefined;
    const { document, selection } = editor;
    return {
      uri: document.uri.toString(),
      path: document.uri.scheme === 'file' ? document.uri.fsPath : '',
      languageId: document.languageId,
      line: selection.active.line,
      character: selection.active.character,
      text: document.getText(),
    };
  }

  activeSession(): SessionRef | undefined {
    const session = vscode.debug.activeDebugSession;
    return session ? sessionRef(session) : undefined;
  }

  async codeActionsAt(uri: string, line: number, character: number): Promise<CodeActionRef[]> {
    const position = new vscode.Position(line, character);
    const actions =
      (await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
        'vscode.executeCodeActionProvider',
        vscode.Uri.parse(uri),
        new vscode.Range(position, position),
      )) ?? [];
    return actions.map((action) => {
      const command = 'title' in action && typeof (action as vscode.Command).command === 'string' ? (action as vscode.Command) : (action as vscode.CodeAction).command;
      return { title: action.title, command: command?.command, arguments: command?.arguments };
    });
  }

  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    return vscode.commands.executeCommand(command, ...args);
  }

  async readFile(path: string): Promise<string | undefined> {
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.file(path)));
    } catch {
      return undefined;
    }
  }

  async withProgress<T>(title: string, task: () => Promise<T>): Promise<T> {
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, task);
  }

  async startChildSession(parentId: string, configuration: Record<string, unknown>): Promise<boolean> {
    const parent = this.sessions.get(parentId);
    if (!parent) return false;
    return vscode.debug.startDebugging(parent.workspaceFolder, configuration as vscode.DebugConfiguration, {
      parentSession: parent,
      lifecycleManagedByParent: true,
    });
  }

  // -- registrations (VS Code objects in, plain values out) ---------------------------------

  registerCommand(id: string, handler: (...args: any[]) => unknown): void {
    this.disposables.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await handler(...args);
        } catch (error) {
          // Never swallow: log the stack and show the reason.
          this.log(`${id} failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
          this.showError(`livefix: ${id} failed: ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        }
      }),
    );
  }

  registerDebugAdapter(
    type: string,
    describe: (configuration: Record<string, unknown>, folder: string | undefined) => Promise<AdapterDescriptor>,
    resolve: (configuration: Record<string, unknown>, folder: string | undefined) => Promise<Record<string, unknown> | undefined>,
    onMessage: (sessionId: string, message: unknown) => void,
  ): void {
    this.disposables.push(
      vscode.debug.registerDebugAdapterDescriptorFactory(type, {
        createDebugAdapterDescriptor: async (session) => {
          const descriptor = await describe(session.configuration, session.workspaceFolder?.uri.fsPath);
          this.log(`debug adapter for "${session.name}": ${JSON.stringify(descriptor)}`);
          return descriptor.kind === 'server'
            ? new vscode.DebugAdapterServer(descriptor.port, descriptor.host)
            : new vscode.DebugAdapterExecutable(descriptor.command, descriptor.args, descriptor.env ? { env: descriptor.env } : undefined);
        },
      }),
      vscode.debug.registerDebugConfigurationProvider(type, {
        resolveDebugConfigurationWithSubstitutedVariables: async (folder, configuration) =>
          (await resolve(configuration, folder?.uri.fsPath)) as vscode.DebugConfiguration | undefined,
      }),
      vscode.debug.registerDebugAdapterTrackerFactory(type, {
        createDebugAdapterTracker: (session) => ({ onDidSendMessage: (message) => onMessage(session.id, message) }),
      }),
    );
  }

  onSessions(type: string, started: (session: SessionRef) => void, ended: (sessionId: string) => void, changed: () => void): void {
    this.disposables.push(
      vscode.debug.onDidStartDebugSession((session) => {
        if (session.type !== type) return;
        this.sessions.set(session.id, session);
        started(sessionRef(session));
      }),
      vscode.debug.onDidTerminateDebugSession((session) => {
        if (session.type !== type) return;
        this.sessions.delete(session.id);
        ended(session.id);
      }),
      vscode.debug.onDidChangeActiveDebugSession(() => changed()),
    );
    for (const session of activeSessions(type)) {
      this.sessions.set(session.id, session);
      started(sessionRef(session));
    }
  }

  onCustomEvent(type: string, handler: (sessionId: string, event: string, body: unknown) => void): void {
    this.disposables.push(
      vscode.debug.onDidReceiveDebugSessionCustomEvent((event) => {
        if (event.session.type === type) handler(event.session.id, event.event, event.body);
      }),
    );
  }

  onSave(handler: (path: string, languageId: string) => void): void {
    this.disposables.push(
      vscode.workspace.onDidSaveTextDocument((document) => {
        if (document.uri.scheme === 'file') handler(document.uri.fsPath, document.languageId);
      }),
    );
  }

  setting(key: string): unknown {
    return vscode.workspace.getConfiguration('livefix').get(key);
  }

  onSettingsChanged(handler: () => void): void {
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((event) => event.affectsConfiguration('livefix') && handler()));
  }

  activeFilePath(): string | undefined {
    const document = vscode.window.activeTextEditor?.document;
    return document?.languageId === 'python' && document.uri.scheme === 'file' ? document.uri.fsPath : undefined;
  }

  /** The Python extension's selected interpreter, when that extension is installed. */
  pythonExtensionQuery(): PythonExtensionQuery | undefined {
    const extension = vscode.extensions.getExtension('ms-python.python');
    if (!extension) return undefined;
    return async (resource) => {
      const api = (await extension.activate()) as any;
      const uri = resource ? vscode.Uri.file(resource) : undefined;
      if (api?.environments?.getActiveEnvironmentPath) {
        const active = api.environments.getActiveEnvironmentPath(uri);
        const resolved = await api.environments.resolveEnvironment(active);
        return resolved?.executable?.uri?.fsPath ?? active?.path;
      }
      return api?.settings?.getExecutionDetails?.(uri)?.execCommand?.[0];
    };
  }

  async startLanguageClient(spec: LanguageServerSpec): Promise<{ notify(method: string, params: unknown): void; stop(): Promise<void> }> {
    const serverOptions: ServerOptions = { command: spec.command, args: spec.args, options: { env: { ...process.env, ...spec.env } } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: spec.documentSelector,
      outputChannel: this.output,
    };
    const client = new LanguageClient(spec.id, spec.name, serverOptions, clientOptions);
    await client.start();
    return {
      notify: (method, params) => void client.sendNotification(method, params).catch((error) => this.log(`notify ${method} failed: ${error}`)),
      stop: () => client.stop(),
    };
  }
}

function show(item: vscode.StatusBarItem, state: StatusItemState | undefined): void {
  if (!state) {
    item.hide();
    return;
  }
  item.text = state.text;
  item.tooltip = state.tooltip;
  item.command = state.command;
  item.show();
}

function activeSessions(type: string): vscode.DebugSession[] {
  const session = vscode.debug.activeDebugSession;
  return session && session.type === type ? [session] : [];
}

function sessionRef(session: vscode.DebugSession): SessionRef {
  return {
    id: session.id,
    name: session.name,
    type: session.type,
    parentId: session.parentSession?.id,
    configuration: session.configuration,
    customRequest: (command, args) => Promise.resolve(session.customRequest(command, args)),
  };
}
