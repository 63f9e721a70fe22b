// A plain JSON-RPC 2.0 client over WebSocket, written against the
// specification with Node's `ws` package only: no wsrpc code.
// Usage: node client.js URL
// Prints one JSON object per line: {"case": name, "reply": <the JSON-RPC reply>}.
'use strict';
const WebSocket = require('ws');

const ws = new WebSocket(process.argv[2]);
const pending = new Map();
const out = (c, reply) => console.log(JSON.stringify({ case: c, reply }));

ws.on('message', (data) => {
  const msg = JSON.parse(data.toString());
  if (Array.isArray(msg)) {
    pending.get('batch')(msg);
    pending.delete('batch');
  } else if (msg.method !== undefined && msg.id !== undefined) {
    // The server calls us back: answer like any JSON-RPC peer.
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { from: 'node', got: msg.params } }));
  } else if (msg.method === undefined) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
});

function call(c, method, params, id) {
  id = id === undefined ? c : id;
  const req = { jsonrpc: '2.0', method, id };
  if (params !== undefined) req.params = params;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout: ' + c)), 10000);
    pending.set(id, (reply) => { clearTimeout(timer); out(c, reply); resolve(); });
    ws.send(JSON.stringify(req));
  });
}

ws.on('open', async () => {
  try {
    await call('echo', 'echo', ['hello', 1]);
    await call('add', 'add', [1, 2, 3.5], 7);
    await call('unknown', 'no.such.method', []);
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'note', params: ['from node'] }));
    await new Promise((resolve) => {
      pending.set('batch', (reply) => { out('batch', reply); resolve(); });
      ws.send(JSON.stringify([
        { jsonrpc: '2.0', method: 'add', params: [1, 2], id: 'b1' },
        { jsonrpc: '2.0', method: 'note', params: ['in a batch'] },
        { jsonrpc: '2.0', method: 'echo', params: { k: 'v' }, id: 'b2' },
      ]));
    });
    await call('callback', 'callback', { method: 'client.hello', params: ['ping'] });
    ws.close(1000, 'done');
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
});
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
