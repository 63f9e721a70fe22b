// A scripted in-process peer: a WebSocket class to give the client
// (options.WebSocket) whose sockets the test drives as the server would.
// For exchanges a real server does not produce on demand (bad replies,
// exact credit, a notice followed by a chosen close code).

export class FakeServer {
  constructor({ protocol = 'jsonrpc2.0', open = true } = {}) {
    this.sockets = [];
    this.protocol = protocol;
    this.open = open; // false: sockets never open (a handshake that hangs)
    this.refuse = false; // true: sockets close before they open
    this.deaf = false; // true: a close is never answered (no close event follows)
    this.waiters = new Set();
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url, protocols) {
        this.url = url;
        this.protocols = protocols;
        this.readyState = 0;
        this.protocol = '';
        this.bufferedAmount = 0;
        this.sent = [];
        this.closedWith = null;
        server.sockets.push(this);
        setTimeout(() => {
          if (server.refuse) {
            this.readyState = 3;
            this.onclose?.({ code: 1006, reason: '', wasClean: false });
          } else if (server.open) {
            this.readyState = 1;
            this.protocol = server.protocol;
            this.onopen?.();
          }
          server._tick();
        }, 0);
      }

      send(text) {
        if (this.readyState !== 1) throw new Error('not open');
        this.sent.push(text);
        server._tick();
      }

      close(code = 1000, reason = '') {
        if (this.readyState >= 2) return;
        this.readyState = 2;
        this.closedWith = { code, reason };
        if (server.deaf) return;
        setTimeout(() => {
          this.readyState = 3;
          this.onclose?.({ code, reason, wasClean: true });
          server._tick();
        }, 0);
      }
    };
  }

  _tick() {
    for (const w of [...this.waiters]) w();
  }

  /** until resolves when check() is truthy (checked on every event of the fake), or rejects after ms. */
  until(check, ms = 3000) {
    return new Promise((resolve, reject) => {
      const stop = () => {
        this.waiters.delete(t);
        clearTimeout(timer);
        clearInterval(poll);
      };
      const t = () => {
        let v;
        try {
          v = check();
        } catch (err) {
          stop();
          reject(err);
          return;
        }
        if (v) {
          stop();
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error('fake: timed out waiting'));
      }, ms);
      const poll = setInterval(t, 5); // for what changes without an event of the fake
      this.waiters.add(t);
      t();
    });
  }

  /** socket resolves with the i-th socket once it is open. */
  socket(i) {
    return this.until(() => this.sockets[i]?.readyState === 1 && this.sockets[i]);
  }

  /** sent resolves with the n-th message (parsed) sent on ws that satisfies match. */
  sentOn(ws, match = () => true, n = 0) {
    return this.until(() => ws.sent.map((t) => JSON.parse(t)).filter(match)[n]);
  }

  /** push delivers a message from the server (an object, or text as it is). */
  push(ws, msg) {
    ws.onmessage?.({ data: typeof msg === 'string' || msg instanceof Uint8Array ? msg : JSON.stringify(msg) });
    this._tick();
  }

  /** drop ends ws as the server or the network would. */
  drop(ws, code = 1006, reason = '') {
    if (ws.readyState === 3) return;
    ws.readyState = 3;
    ws.onclose?.({ code, reason, wasClean: code !== 1006 });
    this._tick();
  }
}
