// A Node script using @wsrpc/client against `wsrpc serve`:
//
//   wsrpc serve &
//   node examples/node/demo.js ws://127.0.0.1:8080/rpc
//
// Node 22 and later have a WebSocket of their own; on Node 18 and 20 the
// client loads the ws package (npm install ws).
import { connect, Codes } from '../../src/index.js';

const url = process.argv[2] ?? 'ws://127.0.0.1:8080/rpc';
const client = await connect(url, { waitForServer: true });
client.addEventListener('status', (e) => console.log(`status: ${e.status}`));

console.log('add [1,2,3] →', await client.call('add', [1, 2, 3]));

try {
  await client.call('sleep', { ms: 5000 }, { timeout: 100 });
} catch (e) {
  console.log(`sleep with a 100 ms timeout → error ${e.code}${e.code === Codes.DEADLINE_EXCEEDED ? ' (deadline exceeded)' : ''}`);
}

const ac = new AbortController();
setTimeout(() => ac.abort(), 50);
try {
  await client.call('sleep', { ms: 5000 }, { signal: ac.signal });
} catch (e) {
  console.log(`sleep, aborted after 50 ms → error ${e.code}${e.code === Codes.CANCELED ? ' (canceled)' : ''}`);
}

client.handle('node.greet', ([name]) => `hello, ${name}`);
console.log('callback node.greet →', await client.call('callback', { method: 'node.greet', params: ['server'] }));

const countdown = client.stream('countdown', { from: 3, interval_ms: 50 }, { window: 2 });
for await (const n of countdown) console.log('countdown:', n);
console.log('countdown result:', await countdown.result);

const sub = await client.subscribe('chat.node', { echo: true });
const pos = await client.publish('chat.node', { text: 'hi from node' });
console.log('published at offset', pos.offset);
for await (const p of sub) {
  console.log(`chat.node #${p.offset}:`, JSON.stringify(p.data));
  break; // leaving the loop unsubscribes
}

await client.close();
console.log('closed');
