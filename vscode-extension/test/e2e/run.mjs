// End-to-end test driver: a real VS Code (code-server) in Debian's chromium, driven by
// playwright-core, with this extension loaded in development mode and the test module
// (out/e2e/suite.js) run inside VS Code's extension host through the
// `extensionDevelopmentPath` / `extensionTestsPath` payload, which the web workbench only
// honours with `--enable-smoke-test-driver`.
//
// The test module talks back over a small HTTP server on 127.0.0.1 (LIVEFIX_E2E_CONTROL):
// `POST /screenshot?name=...` makes this driver photograph the workbench and answers when
// the PNG is written, `POST /log` prints a line. VS Code calls `window.codeAutomationExit(code)`
// when the test module settles; that is the test's result.
//
// What is tested is what ships: the packaged .vsix (LIVEFIX_E2E_VSIX, default
// dist/livefix.vsix), unzipped and loaded as the development extension, with no
// `livefix.python`: the extension makes its own Python environment from the wheels the .vsix
// carries, in this run's fresh global storage. Programs run on `python3` from PATH, which
// here is a bare venv (no pip, no livefix, no debugpy) put first on code-server's PATH: the
// adapter has to inject debugpy and livefix into it.
//
// Usage: node test/e2e/run.mjs   (from vscode-extension/, after `vsce package`; scripts/e2e.sh does both)
// Env: LIVEFIX_E2E_VSIX, LIVEFIX_E2E_BASE_PYTHON (the bare venv's base, default python3),
// LIVEFIX_E2E_TIMEOUT_MS (default 300000).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const extensionRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const codeServer = join(extensionRoot, 'e2e-tools', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const resultsDir = join(extensionRoot, 'test-results', 'e2e');
const timeoutMs = Number(process.env.LIVEFIX_E2E_TIMEOUT_MS ?? 300_000);

const cleanups = [];
async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (error) {
      console.error('e2e: cleanup step failed:', error);
    }
  }
}

function log(line) {
  console.log(`e2e: ${line}`);
}

/** Rejects after `ms` with `what` in the message; the timer never keeps the process alive. */
function deadline(ms, what) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms).unref());
}

async function main() {
  rmSync(resultsDir, { recursive: true, force: true });
  mkdirSync(resultsDir, { recursive: true });
  mkdirSync(join(extensionRoot, '.e2e-tmp'), { recursive: true });
  const scratch = mkdtempSync(join(extensionRoot, '.e2e-tmp', 'run-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));

  // A fresh copy of the sample workspace: the test edits files in it.
  const workspace = join(scratch, 'workspace');
  cpSync(join(extensionRoot, 'test', 'e2e', 'workspace'), workspace, { recursive: true });
  // The extension as packaged.
  const vsix = resolve(process.env.LIVEFIX_E2E_VSIX ?? join(extensionRoot, 'dist', 'livefix.vsix'));
  if (!existsSync(vsix)) throw new Error(`${vsix} is missing: run \`npx @vscode/vsce package --out dist/livefix.vsix\` first`);
  execFileSync('unzip', ['-q', vsix, '-d', join(scratch, 'vsix')]);
  const extensionPath = join(scratch, 'vsix', 'extension');
  log(`extension under test: ${vsix}`);

  // The developer's interpreter: nothing installed in it, and it must stay that way.
  const debuggeeVenv = join(scratch, 'debuggee-venv');
  execFileSync(process.env.LIVEFIX_E2E_BASE_PYTHON ?? 'python3', ['-m', 'venv', '--without-pip', debuggeeVenv]);
  const debuggee = join(debuggeeVenv, 'bin', 'python3');
  for (const module of ['livefix', 'debugpy']) {
    const found = spawnSync(debuggee, ['-c', `import ${module}`], { cwd: scratch }).status === 0;
    if (found) throw new Error(`the bare debuggee interpreter ${debuggee} can import ${module}`);
  }
  const globalStorage = join(scratch, 'user-data', 'User', 'globalStorage', 'livefix.livefix');

  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(
    join(workspace, '.vscode', 'settings.json'),
    JSON.stringify(
      {
        // Every apply carries a canary, so the fix is watched on any Python (3.10/3.11 watch
        // only when asked) and the setting travels end to end.
        'livefix.canary': { window: 30 },
        'workbench.startupEditor': 'none',
        'security.workspace.trust.enabled': false,
        'chat.disableAIFeatures': true,
        'files.autoSave': 'off',
        'remote.autoForwardPorts': false,
        'git.openRepositoryInParentFolders': 'never',
        // No marketplace here (and no traffic to anything but 127.0.0.1 wanted).
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'extensions.ignoreRecommendations': true,
        'workbench.enableExperiments': false,
        'telemetry.telemetryLevel': 'off',
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
      },
      null,
      2,
    ),
  );
  // code-server (logs, heartbeat, device id) and chromium (dconf) write under the XDG
  // directories: keep them in the scratch folder, not in the user's home.
  const xdg = {
    XDG_CONFIG_HOME: join(scratch, 'xdg-config'),
    XDG_DATA_HOME: join(scratch, 'xdg-data'),
    XDG_CACHE_HOME: join(scratch, 'xdg-cache'),
  };
  const configFile = join(scratch, 'code-server.yaml');
  writeFileSync(configFile, 'auth: none\ncert: false\n');

  // -- the control channel the test module calls back on -------------------------------
  let page;
  let shots = 0;
  const control = createServer((request, response) => {
    const url = new URL(request.url, 'http://127.0.0.1');
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', async () => {
      try {
        if (url.pathname === '/screenshot') {
          const name = (url.searchParams.get('name') ?? 'shot').replace(/[^A-Za-z0-9_.-]/g, '_');
          shots += 1;
          const file = join(resultsDir, `${String(shots).padStart(2, '0')}-${name}.png`);
          await page.screenshot({ path: file });
          log(`screenshot ${file}`);
          response.end(file);
        } else if (url.pathname === '/press') {
          await page.keyboard.press(url.searchParams.get('key'));
          response.end('ok');
        } else if (url.pathname === '/type') {
          await page.keyboard.type(body);
          response.end('ok');
        } else if (url.pathname === '/waitFor' || url.pathname === '/click') {
          // A workbench element by CSS selector and (optionally) the text it contains.
          const text = url.searchParams.get('text');
          let locator = page.locator(url.searchParams.get('selector'));
          if (text) locator = locator.filter({ hasText: text });
          await locator.first().waitFor({ state: 'visible', timeout: 30_000 });
          if (url.pathname === '/click') await locator.first().click();
          response.end('ok');
        } else if (url.pathname === '/count') {
          const text = url.searchParams.get('text');
          let locator = page.locator(url.searchParams.get('selector'));
          if (text) locator = locator.filter({ hasText: text });
          response.end(String(await locator.count()));
        } else if (url.pathname === '/statusbar') {
          response.end(await page.locator('[id="workbench.parts.statusbar"]').innerText());
        } else if (url.pathname === '/log') {
          log(`[suite] ${body}`);
          response.end('ok');
        } else {
          response.statusCode = 404;
          response.end();
        }
      } catch (error) {
        response.statusCode = 500;
        response.end(String(error));
      }
    });
  });
  await new Promise((ok) => control.listen(0, '127.0.0.1', ok));
  cleanups.push(() => new Promise((ok) => control.close(ok)));
  const controlUrl = `http://127.0.0.1:${control.address().port}`;

  // -- code-server ----------------------------------------------------------------------
  const server = spawn(
    process.execPath,
    [
      codeServer,
      '--bind-addr', '127.0.0.1:0',
      '--config', configFile,
      '--auth', 'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir', join(scratch, 'user-data'),
      '--extensions-dir', join(scratch, 'extensions'),
      '--vscode-option', 'enable-smoke-test-driver',
      // The extension host keeps this environment (the bare venv first on PATH) instead of
      // the login shell's, whose profile may put another python3 first (pyenv's shims here).
      '--vscode-option', 'force-disable-user-env',
    ],
    {
      cwd: scratch,
      env: {
        ...process.env,
        ...xdg,
        // No marketplace: point code-server's gallery at a closed local port instead of open-vsx.
        EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }),
        PATH: `${join(debuggeeVenv, 'bin')}:${process.env.PATH}`,
        LIVEFIX_E2E_CONTROL: controlUrl, LIVEFIX_E2E_DEBUGGEE: debuggee, LIVEFIX_E2E_STORAGE: globalStorage, LIVEFIX_E2E_RESULTS: resultsDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so cleanup ends the extension host and debuggees too
    },
  );
  cleanups.push(async () => {
    if (server.exitCode === null) {
      const exited = new Promise((ok) => server.once('exit', ok));
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await Promise.race([exited, deadline(10_000, 'code-server to exit')]).catch(() => process.kill(-server.pid, 'SIGKILL'));
    }
  });
  const serverLog = [];
  const address = await Promise.race([
    new Promise((ok, fail) => {
      const onData = (chunk) => {
        const text = chunk.toString();
        serverLog.push(text);
        const match = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverLog.join(''));
        if (match) ok(match[1]);
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.once('exit', (code) => fail(new Error(`code-server exited (${code}) before listening:\n${serverLog.join('')}`)));
    }),
    deadline(60_000, 'code-server to listen'),
  ]);
  log(`code-server at ${address}`);
  const authority = new URL(address).host;

  // -- chromium -------------------------------------------------------------------------
  const context = await chromium.launchPersistentContext(join(scratch, 'chromium-profile'), {
    executablePath: chromiumPath(),
    headless: true,
    env: { ...process.env, ...xdg },
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  cleanups.push(() => context.close());
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    const text = message.text();
    if (/livefix|e2e|Extension Host|error/i.test(text)) log(`[browser ${message.type()}] ${text.slice(0, 2000)}`);
  });
  page.on('pageerror', (error) => log(`[page error] ${error}`));

  const exit = new Promise((ok) => {
    page.exposeFunction('codeAutomationExit', (code) => ok(Number(code)));
  });
  const payload = [
    ['extensionDevelopmentPath', `vscode-remote://${authority}${extensionPath}`],
    ['extensionTestsPath', `vscode-remote://${authority}${join(extensionRoot, 'out', 'e2e', 'suite.js')}`],
  ];
  const url = `${address}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  await page.goto(url);
  log('workbench opened; waiting for the test module');
  let code;
  try {
    code = await Promise.race([exit, deadline(timeoutMs, 'the test module to finish')]);
  } catch (error) {
    await page.screenshot({ path: join(resultsDir, 'timeout.png') }).catch(() => undefined);
    console.error(serverLog.join('').slice(-5000));
    throw error;
  }
  await page.screenshot({ path: join(resultsDir, 'final.png') }).catch(() => undefined);
  const outside = new Set([...serverLog.join('').matchAll(/error \w+ getaddrinfo \w+ ([\w.-]+)/g)].map((m) => m[1]));
  if (outside.size) log(`code-server tried to reach (and could not): ${[...outside].join(', ')}`);
  if (code !== 0) {
    // VS Code's own logs (extension host, the livefix output channel, the language client).
    cpSync(join(scratch, 'user-data', 'logs'), join(resultsDir, 'logs'), { recursive: true });
    log(`VS Code logs copied to ${join(resultsDir, 'logs')}`);
  }
  return code;
}

let status = 1;
try {
  status = await main();
  log(status === 0 ? 'PASSED' : `FAILED (extension tests exited with ${status})`);
  // The closing line CI reads: one end-to-end scenario.
  console.log(status === 0 ? 'e2e: 1 passed, 0 failed' : 'e2e: 0 passed, 1 failed');
} catch (error) {
  console.error('e2e: FAILED:', error);
  console.log('e2e: 0 passed, 1 failed');
} finally {
  await cleanup();
}
process.exit(status);


// Debian's chromium on x86-64 (what CI runs); elsewhere $LIVEFIX_E2E_CHROMIUM, or a clear failure.
function chromiumPath() {
  const wanted = process.env.LIVEFIX_E2E_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(wanted)) {
    throw new Error(`e2e: no chromium at ${wanted}: install Debian's chromium (apt-get install chromium) ` +
      'or set LIVEFIX_E2E_CHROMIUM to a chromium or chrome binary');
  }
  return wanted;
}
