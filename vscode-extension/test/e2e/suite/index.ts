import * as vscode from 'vscode';

export async function run(): Promise<void> {
  const ext = vscode.extensions.getExtension('livefix.livefix');
  if (!ext) throw new Error('extension not loaded');
  await ext.activate();
  await fetch(`${process.env.LIVEFIX_E2E_CONTROL}/log`, { method: 'POST', body: 'extension active' });
  await fetch(`${process.env.LIVEFIX_E2E_CONTROL}/screenshot?name=infra`, { method: 'POST' });
}
