// Smoke test of extension.js outside VS Code: a stub `vscode` module records what the extension
// does. Checks that the server is looked up on PATH and by path, and that a missing executable
// gives a clear error message (and no client start).
'use strict';

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Module = require('module');

const shown = [];
let setting = 'lwas-lsp';
const vscode = {
  workspace: {
    workspaceFolders: undefined,
    getConfiguration: () => ({ get: (key, dflt) => (key === 'server.path' ? setting : dflt) }),
    onDidChangeConfiguration: () => ({ dispose() {} }),
    createFileSystemWatcher: () => ({ dispose() {} }),
  },
  window: {
    createOutputChannel: () => ({ appendLine() {}, dispose() {} }),
    showErrorMessage: async (msg) => { shown.push(msg); return undefined; },
  },
  commands: { registerCommand: () => ({ dispose() {} }), executeCommand: async () => {} },
};
const started = [];
class LanguageClient {
  constructor(id, name, serverOptions) { this.serverOptions = serverOptions; }
  async start() { started.push(this.serverOptions.run.command); }
  async stop() {}
}
const origLoad = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === 'vscode') return vscode;
  if (request === 'vscode-languageclient/node') return { LanguageClient, TransportKind: { stdio: 0 } };
  return origLoad.call(this, request, parent, isMain);
};

const ext = require('../extension.js');

(async () => {
  // an executable found on PATH and by absolute path; a missing one is undefined
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwas-ext-'));
  const exe = path.join(dir, 'lwas-lsp');
  fs.writeFileSync(exe, '#!/bin/sh\n');
  fs.chmodSync(exe, 0o755);
  const oldPath = process.env.PATH;
  process.env.PATH = dir + path.delimiter + oldPath;
  assert.strictEqual(ext.resolveExecutable('lwas-lsp'), exe);
  assert.strictEqual(ext.resolveExecutable(exe), exe);
  assert.strictEqual(ext.resolveExecutable(path.join(dir, 'nope')), undefined);
  assert.strictEqual(ext.resolveExecutable('lwas-lsp-does-not-exist'), undefined);

  const context = { subscriptions: [] };
  await ext.activate(context);
  assert.deepStrictEqual(started, [exe]);
  assert.deepStrictEqual(shown, []);
  await ext.deactivate();

  // a missing executable: a clear error, no client
  setting = '/nonexistent/lwas-lsp';
  process.env.PATH = oldPath;
  await ext.activate({ subscriptions: [] });
  assert.strictEqual(started.length, 1);
  assert.strictEqual(shown.length, 1);
  assert.match(shown[0], /language server executable `\/nonexistent\/lwas-lsp` was not found/);
  assert.match(shown[0], /lwas\.server\.path/);
  fs.rmSync(dir, { recursive: true });
  console.log('✓ test/extension.smoke.js passed');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
