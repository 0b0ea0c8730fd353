// The LwaS extension: starts the `lwas-lsp` language server (stdio) for `lwas` documents.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

const INSTALL_HINT =
  'Install LwaS (`pip install -e .` in the LwaS repository, or `make test`, which creates .venv) ' +
  'and put `lwas-lsp` on PATH, or set `lwas.server.path` to its absolute path ' +
  '(e.g. /path/to/lwas/.venv/bin/lwas-lsp).';

/** @type {LanguageClient | undefined} */
let client;
/** @type {vscode.OutputChannel | undefined} */
let output;

function isExecutableFile(file) {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform !== 'win32') fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Expands `~` and `${workspaceFolder}` in the configured path. */
function expand(configured) {
  let p = configured.trim();
  if (p === '~' || p.startsWith('~/') || p.startsWith('~\\')) p = path.join(os.homedir(), p.slice(1));
  const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
  if (folder) p = p.split('${workspaceFolder}').join(folder.uri.fsPath);
  return p;
}

/**
 * The executable for `configured`: a path (absolute, or relative to the first workspace folder)
 * when it contains a separator, else a name looked up on PATH (with PATHEXT on Windows).
 * Returns undefined when there is no such executable.
 */
function resolveExecutable(configured) {
  const p = expand(configured);
  if (!p) return undefined;
  const exts = process.platform === 'win32'
    ? ['', ...(process.env.PATHEXT || '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)]
    : [''];
  if (p.includes('/') || p.includes('\\')) {
    const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
    const abs = path.isAbsolute(p) || !folder ? path.resolve(p) : path.join(folder.uri.fsPath, p);
    return exts.map((e) => abs + e).find(isExecutableFile);
  }
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    for (const e of exts) {
      const candidate = path.join(dir, p + e);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

async function reportMissing(configured) {
  const message = `LwaS: the language server executable \`${configured}\` was not found. ${INSTALL_HINT}`;
  if (output) output.appendLine(message);
  const choice = await vscode.window.showErrorMessage(message, 'Open Settings');
  if (choice === 'Open Settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'lwas.server.path');
  }
}

async function startClient(context) {
  const config = vscode.workspace.getConfiguration('lwas');
  const configured = config.get('server.path', 'lwas-lsp') || 'lwas-lsp';
  const args = config.get('server.args', []);
  const command = resolveExecutable(configured);
  if (!command) {
    await reportMissing(configured);
    return;
  }
  output.appendLine(`Starting ${command} ${args.join(' ')}`.trim());

  /** @type {import('vscode-languageclient/node').ServerOptions} */
  const serverOptions = {
    run: { command, args, transport: TransportKind.stdio },
    debug: { command, args, transport: TransportKind.stdio },
  };
  /** @type {import('vscode-languageclient/node').LanguageClientOptions} */
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'lwas' },
      { scheme: 'untitled', language: 'lwas' },
    ],
    outputChannel: output,
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/*.lwas'),
    },
  };
  client = new LanguageClient('lwas', 'LwaS Language Server', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (err) {
    const detail = err && err.message ? err.message : String(err);
    const message = `LwaS: could not start the language server \`${command}\`: ${detail}. ${INSTALL_HINT}`;
    output.appendLine(message);
    vscode.window.showErrorMessage(message);
    client = undefined;
  }
}

async function stopClient() {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop();
    } catch {
      // already stopped (e.g. the server exited)
    }
  }
}

async function activate(context) {
  output = vscode.window.createOutputChannel('LwaS Language Server');
  context.subscriptions.push(output);
  context.subscriptions.push(
    vscode.commands.registerCommand('lwas.restartServer', async () => {
      await stopClient();
      await startClient(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration('lwas.server')) {
        await stopClient();
        await startClient(context);
      }
    }),
  );
  await startClient(context);
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate, resolveExecutable };
