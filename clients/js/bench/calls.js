// Calls per second through this client from Node, beside the Go client
// (`wsrpc bench`, which calls through client.Client) on the same server, in
// the same run: one connection, C calls in flight, N calls of echo with a
// 64-byte payload, each client in turn, for R rounds.
//
//   node bench/calls.js [--calls N] [--concurrency C] [--rounds R]
//
// It builds ./cmd/wsrpc, starts `wsrpc serve --log-level error` on a free
// loopback port, and prints one line per client and round, then the
// median ratios. Both clients run both codecs: json (JSON-RPC 2.0, this
// client's default) and binary (wsrpc.v1, the Go client's default).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/index.js';

const args = process.argv.slice(2);
function flag(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
}
const N = flag('calls', 50_000);
const C = flag('concurrency', 64);
const R = flag('rounds', 3);

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'wsrpc-js-bench-'));
const bin = join(dir, 'wsrpc');
execFileSync('go', ['build', '-o', bin, './cmd/wsrpc'], { cwd: root, stdio: 'inherit' });
const srv = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--log-level', 'error', '--demo-topics=false'], { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let buf = '';
  srv.stderr.setEncoding('utf8');
  srv.stderr.on('data', (d) => {
    buf += d;
    const m = /listening on (ws:\/\/\S+)"/.exec(buf);
    if (m) resolve(m[1]);
  });
  srv.once('exit', () => reject(new Error(`wsrpc serve exited:\n${buf}`)));
});

const params = ['x'.repeat(64 - 4)]; // ["xxx…"]: 64 bytes of JSON

async function jsRun(codec) {
  const c = await connect(url, { codec });
  let next = 0;
  const worker = async () => {
    while (next < N) {
      next++;
      await c.call('echo', params);
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: C }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await c.close();
  return N / s;
}

function goRun(codec) {
  const out = execFileSync(bin, ['bench', '-n', String(N), '-c', String(C), '--connections', '1', '--codec', codec, '--json', url, 'echo', JSON.stringify(params)], { encoding: 'utf8' });
  const r = JSON.parse(out);
  if (r.ok !== N) throw new Error(`wsrpc bench: ${out}`);
  return r.rps;
}

const rows = { 'js (json)': [], 'go (json)': [], 'js (binary)': [], 'go (binary)': [] };
console.log(`node ${process.version}, ${N} calls of echo (64 B) per run, ${C} in flight on one connection, ${R} rounds`);
for (let r = 0; r < R; r++) {
  rows['js (json)'].push(await jsRun('json'));
  rows['go (json)'].push(goRun('json'));
  rows['js (binary)'].push(await jsRun('binary'));
  rows['go (binary)'].push(goRun('binary'));
  console.log(`round ${r + 1}: ` + Object.entries(rows).map(([k, v]) => `${k} ${Math.round(v.at(-1))} calls/s`).join(', '));
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
console.log(`median: ${Object.entries(m).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')} calls/s; js/go: json ${(m['js (json)'] / m['go (json)']).toFixed(2)}x, binary ${(m['js (binary)'] / m['go (binary)']).toFixed(2)}x`);
srv.kill('SIGTERM');
await new Promise((r) => srv.once('exit', r));
rmSync(dir, { recursive: true, force: true });
