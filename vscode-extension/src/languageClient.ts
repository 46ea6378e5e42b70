/**
 * How the language client starts `python -m livefix.lsp` (pure data; vscodeHost.ts
 * turns it into a vscode-languageclient `LanguageClient`).
 */

export interface LanguageServerSpec {
  id: string;
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  documentSelector: { scheme: string; language: string }[];
}

export function languageServerSpec(python: string): LanguageServerSpec {
  return {
    id: 'livefix',
    name: 'livefix language server',
    command: python,
    args: ['-m', 'livefix.lsp'],
    // Unbuffered, so the server's log lines reach the output channel as they happen.
    env: { PYTHONUNBUFFERED: '1' },
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'untitled', language: 'python' },
    ],
  };
}
