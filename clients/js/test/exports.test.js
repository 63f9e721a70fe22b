// The hand-written declarations (src/index.d.ts) name exactly what the
// module exports at run time; tsc checks them (npm run typecheck).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mod from '../src/index.js';
import { jsRoot } from './helpers.js';

it('index.d.ts declares every runtime export, and nothing else', () => {
  const dts = readFileSync(join(jsRoot, 'src', 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(mod).sort());
  for (const [k, v] of Object.entries(mod.Codes)) {
    assert.match(dts, new RegExp(`readonly ${k}: ${v};`), `Codes.${k}`);
  }
  for (const k of ['MAX_ATTEMPTS', 'MAX_RETRY_HINT', 'DEFAULT_QUEUE_SIZE', 'DEFAULT_HANDSHAKE_TIMEOUT', 'DEFAULT_MAX_MESSAGE_SIZE', 'DEFAULT_MAX_SERVED', 'DEFAULT_HEARTBEAT_INTERVAL', 'DEFAULT_PONG_TIMEOUT', 'DEFAULT_BACKOFF_BASE', 'DEFAULT_BACKOFF_MAX', 'DEFAULT_BUFFER', 'DEFAULT_WINDOW', 'MAX_WINDOW', 'STREAM_WINDOW_BYTES', 'MAX_AUTH_REFRESH_LEAD', 'CLOSE_AUTH_EXPIRED']) {
    assert.match(dts, new RegExp(`export declare const ${k}: ${mod[k]};`), k);
  }
});
