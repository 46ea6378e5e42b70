/**
 * Entry point: wires the editor (vscodeHost) to the logic modules. No decisions here.
 */

import type * as vscode from 'vscode';
import { Controller, COMMANDS } from './commands';
import { DEBUG_TYPE, describeAdapter, resolveConfiguration } from './debugAdapter';
import { EvidenceWatcher, realSleep } from './evidenceWatcher';
import { BundledPython, hostTarget } from './bundledPython';
import { resolveRuntime, runProcess } from './interpreter';
import { languageServerSpec } from './languageClient';
import * as protocol from './protocol';
import { FailedResponses, Requests } from './requests';
import { SessionRegistry } from './sessions';
import { languageServerChanged, readSettings, type Settings } from './settings';
import { LivefixState } from './state';
import { VSCodeHost } from './vscodeHost';

let stopLanguageClient: (() => Promise<void>) | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const host = new VSCodeHost();
  context.subscriptions.push(host);

  let settings = loadSettings(host);
  const bundled = new BundledPython({
    root: context.asAbsolutePath('bundled/python'),
    storage: context.globalStorageUri.fsPath,
    target: hostTarget(),
    platform: process.platform,
    run: runProcess,
    log: (line) => host.log(line),
    progress: (title, task) => host.withProgress(title, task),
  });
  const runtime = (resource?: string) => resolveRuntime(settings.python, host.pythonExtensionQuery(), resource, bundled, runProcess);

  const failures = new FailedResponses();
  const requests = new Requests(host, failures);
  let notifyServer: (body: protocol.ChangeResultBody) => void = () => undefined;
  const controller = new Controller({
    host,
    sessions: new SessionRegistry(),
    requests,
    state: new LivefixState(),
    applyMode: () => settings.applyMode,
    notifyServer: (body) => notifyServer(body),
    canary: () => settings.canary,
    evidence: new EvidenceWatcher({ host, requests, sleep: realSleep, now: () => Date.now() / 1000 }),
  });

  host.registerDebugAdapter(
    DEBUG_TYPE,
    async (configuration, folder) => {
      const python = await runtime(folder);
      if ('error' in python) throw new Error(python.error); // resolve below has already shown it
      return describeAdapter(configuration, python.tools);
    },
    async (configuration, folder) => {
      const python = await runtime(folder);
      if ('error' in python) {
        host.showError(python.error);
        return undefined;
      }
      host.log(`debug session "${String(configuration['name'] ?? '')}": ${python.description}`);
      const resolved = resolveConfiguration(configuration, python.program, host.activeFilePath());
      if ('error' in resolved) {
        host.showError(resolved.error);
        return undefined;
      }
      return resolved.configuration;
    },
    (sessionId, message) => failures.record(sessionId, message),
  );
  host.onSessions(
    DEBUG_TYPE,
    (session) => controller.sessionStarted(session),
    (sessionId) => {
      failures.forget(sessionId);
      controller.sessionEnded(sessionId);
    },
    () => void controller.refreshStatus(),
  );
  host.onCustomEvent(DEBUG_TYPE, (sessionId, event, body) => {
    if (event === protocol.APPLIED_EVENT) void controller.applied(sessionId, body as protocol.ChangeResultBody);
    if (event === protocol.CANARY_EVENT) void controller.canaryVerdict(sessionId, body as protocol.CanaryVerdict);
    if (event === 'debugpyAttach') void controller.childProcess(sessionId, body as Record<string, unknown>);
  });
  host.onSave((path, languageId) => void controller.saved(path, languageId));

  host.registerCommand(COMMANDS.applyAtCursor, () => controller.applyAtCursor());
  host.registerCommand(COMMANDS.reloadModified, () => controller.reloadModified());
  host.registerCommand(COMMANDS.rollback, () => controller.rollback());
  host.registerCommand(COMMANDS.showHistory, () => controller.showHistory());
  host.registerCommand(COMMANDS.captureFrames, () => controller.captureFrames());
  host.registerCommand(COMMANDS.persistRunning, () => controller.persistRunning());
  host.registerCommand(COMMANDS.applyWithCanary, () => controller.applyWithCanary());
  host.registerCommand(COMMANDS.watchFunction, () => controller.watchFunction());
  host.registerCommand(COMMANDS.stopWatching, () => controller.stopWatching());
  host.registerCommand(COMMANDS.applyDefinition, (args: protocol.ApplyDefinitionCommandArgs) => controller.applyDefinition(args));
  host.registerCommand(COMMANDS.reloadModule, (args: protocol.ReloadModuleCommandArgs) => controller.reloadModule(args));

  // Start, stop and restart the language server one after the other (settings can change fast).
  let serverQueue: Promise<void> = Promise.resolve();
  const restartLanguageServer = () =>
    (serverQueue = serverQueue.then(async () => {
      await stopLanguageClient?.();
      stopLanguageClient = undefined;
      notifyServer = () => undefined;
      if (!settings.languageServer) return;
      const python = await runtime();
      if ('error' in python) {
        host.log(`language server not started: ${python.error}`);
        host.showError(python.error);
        return;
      }
      try {
        const client = await host.startLanguageClient(languageServerSpec(python.tools));
        notifyServer = (body) => client.notify(protocol.GENERATION_APPLIED_NOTIFICATION, body);
        stopLanguageClient = () => client.stop();
        host.log(`language server started: ${python.tools} -m livefix.lsp (${python.description})`);
      } catch (error) {
        host.showError(`livefix: the language server did not start: ${error instanceof Error ? error.message : error}`);
      }
    }));
  host.onSettingsChanged(() => {
    const previous = settings;
    settings = loadSettings(host);
    if (languageServerChanged(previous, settings)) void restartLanguageServer();
  });
  await restartLanguageServer();
  host.log('livefix extension active');
}

export async function deactivate(): Promise<void> {
  await stopLanguageClient?.();
}

function loadSettings(host: VSCodeHost): Settings {
  const { settings, problems } = readSettings((key) => host.setting(key));
  for (const problem of problems) host.showError(problem);
  return settings;
}
