// Test helpers: a real `wsrpc serve` built from this repository, a TCP proxy
// that can cut connections, and waiting without sleeping blindly.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..', '..');
export const jsRoot = join(here, '..');

/**
 * need returns why a test cannot run (a skip message), or false. Outside
 * CI a missing tool skips; in CI (CI=true) it fails.
 */
export function need(what, ok, install) {
  if (ok) return false;
  const msg = `${what} is missing; to run this test: ${install}`;
  if (process.env.CI === 'true') throw new Error(msg + ' (CI installs it)');
  return msg;
}

function has(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const noGo = need('go', has('go'), 'install Go (https://go.dev/dl)');

let binDir;
let binary;

/** wsrpcBinary builds ./cmd/wsrpc once per test process, into a temporary directory. */
export function wsrpcBinary() {
  if (binary) return binary;
  binDir = mkdtempSync(join(tmpdir(), 'wsrpc-js-test-'));
  binary = join(binDir, 'wsrpc');
  execFileSync('go', ['build', '-o', binary, './cmd/wsrpc'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  process.on('exit', () => rmSync(binDir, { recursive: true, force: true }));
  return binary;
}

const built = new Map();

/** goBinary builds the Go package pkg (relative to the repository) once per test process. */
export function goBinary(pkg) {
  if (built.has(pkg)) return built.get(pkg);
  wsrpcBinary(); // makes binDir
  const out = join(binDir, pkg.replaceAll('/', '_').replace(/^\._*/, ''));
  execFileSync('go', ['build', '-o', out, pkg], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  built.set(pkg, out);
  return out;
}

/** Server is a `wsrpc serve` process on a loopback port. */
export class Server {
  constructor(proc, port, logs) {
    this.proc = proc;
    this.port = port;
    this.logs = logs;
    this.url = `ws://127.0.0.1:${port}/rpc`;
    this.base = `http://127.0.0.1:${port}`;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** start runs `wsrpc serve` (port 0: any free one) and waits for its "listening" line. */
  static async start({ port = 0, args = [], bin = '' } = {}) {
    for (let tries = 0; ; tries++) {
      const argv = bin ? ['-addr', `127.0.0.1:${port}`, ...args] : ['serve', '--addr', `127.0.0.1:${port}`, '--log-level', 'info', '--drain-timeout', '5s', ...args];
      const proc = spawn(bin || wsrpcBinary(), argv, { stdio: ['ignore', 'ignore', 'pipe'] });
      const logs = [];
      const waiters = new Set();
      let buf = '';
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          logs.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
          for (const w of waiters) w();
        }
      });
      logs.waiters = waiters;
      try {
        const line = await waitFor(() => logs.find((l) => l.includes('listening on')), 10_000, () => `wsrpc serve did not start:\n${logs.join('\n')}`, proc);
        const p = Number(/:(\d+)\/rpc/.exec(line)[1]);
        const s = new Server(proc, p, logs);
        s.args = args;
        s.bin = bin;
        return s;
      } catch (err) {
        proc.kill('SIGKILL');
        // The port of a server just stopped may be taken a moment longer.
        if (port !== 0 && tries < 20 && logs.some((l) => l.includes('address already in use'))) {
          await delay(100);
          continue;
        }
        throw err;
      }
    }
  }

  /** stop sends sig (SIGTERM: a graceful drain) and waits for the process to exit. */
  async stop(sig = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig);
    return await this.exited;
  }

  /** restart stops the server with sig and starts a new one on the same port. */
  async restart(sig = 'SIGTERM') {
    await this.stop(sig);
    return await Server.start({ port: this.port, args: this.args, bin: this.bin });
  }

  /** waitLog waits for a log line matching re. */
  waitLog(re, ms = 10_000) {
    return waitFor(() => this.logs.find((l) => re.test(l)), ms, () => `no log line ${re} in:\n${this.logs.join('\n')}`, null, this.logs.waiters);
  }
}

/**
 * waitFor resolves with the first truthy value of check(), checked when
 * one of waiters fires and every 20 ms, or rejects after ms.
 */
export function waitFor(check, ms = 10_000, why = () => 'timed out', proc = null, waiters = null) {
  return new Promise((resolve, reject) => {
    let poll, timer;
    const end = (fn, v) => {
      clearInterval(poll);
      clearTimeout(timer);
      waiters?.delete(tick);
      proc?.off('exit', onExit);
      fn(v);
    };
    let busy = false; // an async check still running
    let over = false;
    const tick = () => {
      if (busy || over) return;
      let v;
      try {
        v = check();
      } catch (e) {
        over = true;
        end(reject, e);
        return;
      }
      if (v && typeof v.then === 'function') {
        busy = true;
        v.then((x) => {
          busy = false;
          if (x && !over) {
            over = true;
            end(resolve, x);
          }
        }, () => { busy = false; }); // an async check that fails is tried again
        return;
      }
      if (v) {
        over = true;
        end(resolve, v);
      }
    };
    const onExit = () => setImmediate(() => { tick(); if (!over) { over = true; end(reject, new Error(why())); } });
    waiters?.add(tick);
    proc?.once('exit', onExit);
    poll = setInterval(tick, 20);
    timer = setTimeout(() => { if (!over) { over = true; end(reject, new Error(why())); } }, ms);
    tick();
  });
}

export function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Proxy is a TCP proxy to a loopback port; cut() resets every connection
 * through it (the client sees the connection vanish, 1006), and refuse
 * makes it refuse new ones.
 */
export class Proxy {
  static async start(targetPort) {
    const p = new Proxy();
    p.target = targetPort;
    p.socks = new Set();
    p.refuse = false;
    p.srv = net.createServer((c) => {
      if (p.refuse) {
        c.resetAndDestroy();
        return;
      }
      const up = net.connect(p.target, '127.0.0.1');
      p.socks.add(c);
      p.socks.add(up);
      const drop = () => {
        p.socks.delete(c);
        p.socks.delete(up);
        c.destroy();
        up.destroy();
      };
      c.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
      c.pipe(up);
      up.pipe(c);
    });
    await new Promise((r) => p.srv.listen(0, '127.0.0.1', r));
    p.port = p.srv.address().port;
    p.url = `ws://127.0.0.1:${p.port}/rpc`;
    return p;
  }

  /** freeze stops forwarding on every connection through it, closing none: a peer gone silent. */
  freeze() {
    for (const s of this.socks) {
      s.unpipe();
      s.pause();
    }
  }

  cut() {
    for (const s of this.socks) s.resetAndDestroy();
    this.socks.clear();
  }

  async close() {
    this.cut();
    await new Promise((r) => this.srv.close(r));
  }
}

/** handles lists this process's active handles (timers, sockets, processes). */
export function handles() {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'FSReqCallback' && r !== 'Immediate');
}

/**
 * noneLeft waits (spinning on setImmediate, which adds no timer) until the
 * process holds no more handles than want, and fails after ms.
 */
export async function noneLeft(want, ms = 3000) {
  const end = Date.now() + ms;
  while (handles().length > want.length) {
    if (Date.now() > end) throw new Error(`handles left: ${handles()} (before: ${want})`);
    await new Promise((r) => setImmediate(r));
  }
}
