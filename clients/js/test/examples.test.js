// The Node example, and the example at the top of the README, run against a
// real `wsrpc serve` and print what their comments promise; the bench runs
// (briefly) beside `wsrpc bench`.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Server, noGo, jsRoot } from './helpers.js';

describe('examples', { skip: noGo }, () => {
  let srv;
  after(() => srv?.stop());

  it('node/demo.js', async () => {
    srv = await Server.start();
    const { stdout } = await promisify(execFile)(process.execPath, [join(jsRoot, 'examples', 'node', 'demo.js'), srv.url], { timeout: 30_000 });
    assert.equal(stdout, [
      'add [1,2,3] → 6',
      'sleep with a 100 ms timeout → error -32002 (deadline exceeded)',
      'sleep, aborted after 50 ms → error -32001 (canceled)',
      'callback node.greet → hello, server',
      'countdown: 3',
      'countdown: 2',
      'countdown: 1',
      'countdown result: liftoff',
      'published at offset 1',
      'chat.node #1: {"text":"hi from node"}',
      'status: closed',
      'closed',
      '',
    ].join('\n'));
  });

  it('bench/calls.js runs beside wsrpc bench', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(jsRoot, 'bench', 'calls.js'), '--calls', '200', '--rounds', '1', '--concurrency', '8'], { timeout: 120_000 });
    assert.match(stdout, /^median: js \(json\) \d+, go \(json\) \d+, js \(binary\) \d+, go \(binary\) \d+ calls\/s; js\/go: json [\d.]+x, binary [\d.]+x$/m);
  });

  it('README.md example', async () => {
    srv ??= await Server.start();
    const readme = readFileSync(join(jsRoot, 'README.md'), 'utf8');
    const m = /```js\n(import [^]*?)```/.exec(readme);
    assert.ok(m, 'no js example in README.md');
    assert.ok(m[1].includes("'ws://127.0.0.1:8080/rpc'") && m[1].includes("from '@wsrpc/client'"), m[1]);
    const code = m[1]
      .replace("'ws://127.0.0.1:8080/rpc'", JSON.stringify(srv.url))
      .replace("from '@wsrpc/client'", `from ${JSON.stringify(pathToFileURL(join(jsRoot, 'src', 'index.js')).href)}`);
    const dir = mkdtempSync(join(tmpdir(), 'wsrpc-readme-'));
    try {
      const file = join(dir, 'readme.mjs');
      writeFileSync(file, code);
      const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 30_000 });
      assert.equal(stdout, ['6', 'true true -32002', '-32001', 'true', '3', '2', '1', "1 { text: 'hi' } false", ''].join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
