// The Node example runs against a real `wsrpc serve` and prints what its
// comments promise.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
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
});
