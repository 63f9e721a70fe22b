// Sends N JSON-RPC echo calls back to back without waiting for replies, then
// reads the N replies, with Node's `ws` package only.
// Usage: node pipeline.js URL N
// Prints one JSON object: {"ok": ..., "refused": ..., "other": ...}; refused
// counts -32003 (busy) errors.
'use strict';
const WebSocket = require('ws');

const n = Number(process.argv[3]);
const ws = new WebSocket(process.argv[2]);
const counts = { ok: 0, refused: 0, other: 0 };
let seen = 0;

ws.on('message', (data) => {
  const msg = JSON.parse(data.toString());
  if (msg.result !== undefined && JSON.stringify(msg.result) === JSON.stringify(['p' + msg.id])) {
    counts.ok++;
  } else if (msg.error !== undefined && msg.error.code === -32003) {
    counts.refused++;
  } else {
    counts.other++;
  }
  if (++seen === n) {
    console.log(JSON.stringify(counts));
    ws.close(1000);
  }
});
ws.on('open', () => {
  for (let i = 0; i < n; i++) {
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'echo', params: ['p' + i] }));
  }
});
ws.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
