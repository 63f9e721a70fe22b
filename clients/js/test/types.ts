// Type-checked by tsc (npm run typecheck), never run: the declarations of
// src/index.d.ts used as an application would use them.
import { connect, Client, Codes, RPCError, Status, type Publication, type Position, type HandlerContext } from '../src/index.js';

export async function usage(): Promise<void> {
  const c: Client = await connect('ws://127.0.0.1:8080/rpc', { backoff: { base: 50, max: 5000 }, endpoints: ['ws://127.0.0.1:8081/rpc'], inBandAuth: 'auth.login', credentials: async ({ reason }) => ({ token: reason }) });
  const exp: number | null = c.authExpiry;
  void exp;
  const sum: number = await c.call<number>('add', [1, 2], { timeout: 1000, metadata: { tenant: 'acme' }, idempotent: true, signal: AbortSignal.timeout(5000) });
  await c.notify('log', ['x']);
  const off: () => void = c.handle('client.confirm', (params: unknown, ctx: HandlerContext) => ({ ok: !ctx.signal.aborted, params }));
  off();
  const sub = await c.subscribe<{ text: string }>('chat.room', { since: { offset: 1, epoch: 'e' }, echo: true });
  for await (const p of sub) {
    const text: string = p.data.text;
    const gap: boolean = p.gap;
    const pos: Position = { offset: p.offset, epoch: p.epoch };
    void text; void gap; void pos;
  }
  const last: Position | null = sub.position;
  const pos = await c.publish('chat.room', { text: 'hi' });
  const offset: number = pos.offset;
  const s = c.stream<number, string>('countdown', { from: 3 }, { window: 2 });
  for await (const n of s) {
    const x: number = n;
    void x;
  }
  const result: string = await s.result;
  c.addEventListener('status', (e) => { const st: 'connecting' | 'connected' | 'reconnecting' | 'closed' = e.status; void st; });
  c.addEventListener('shutdown', (e) => { const ms: number = e.retryAfterMs; void ms; });
  try {
    await c.call('nope');
  } catch (e) {
    if (e instanceof RPCError && e.code === Codes.METHOD_NOT_FOUND && !e.closed) console.log(e.message, e.data);
  }
  const st: string = Status.CONNECTED;
  const pub: Publication | undefined = undefined;
  void sum; void last; void offset; void result; void st; void pub;
  await c.close();
}
