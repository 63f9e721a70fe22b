"""A plain JSON-RPC 2.0 pub/sub client over WebSocket, written against
docs/PROTOCOL.md with Python's `websockets` package and `json` only: no
wsrpc code.

Usage: pubsub.py URL TOPIC

It subscribes to TOPIC with the reserved method $/subscribe, receives the
$/publication notifications (one object per message, or several packed into
a JSON array), drops the connection without a closing handshake, reconnects,
subscribes again with "since" set to the last position it saw and takes the
missed publications from the reply; then it publishes with $/publish.

The test drives it with one command per line on stdin:

  wait N      read N more publications of TOPIC; print each, then "received"
  drop        abort the connection (no close frame); print "dropped"
  reconnect   connect again (offering the jsonrpc2.0 subprotocol) and
              subscribe with since = the last position seen; print
              "resubscribed"
  publish T D subscribe to topic T with echo, publish D (JSON) on it, print
              the reply and the publication that comes back ("published")
  deny T      publish on topic T and print the reply ("denied")
  quit        close the connection normally and exit

It prints one JSON object per line on stdout, each with an "event" field.
Every wait is bounded by TIMEOUT seconds (less than the test waits for a line).
"""
import asyncio
import json
import sys

import websockets

TIMEOUT = 5
CONNS = []  # every connection made, aborted on the way out


def out(event, **fields):
    fields["event"] = event
    print(json.dumps(fields), flush=True)


class Conn:
    """One connection: replies by id, publications on a queue."""

    def __init__(self, ws, n):
        self.ws = ws
        self.n = n
        self.next_id = 0
        self.pending = {}
        self.pubs = asyncio.Queue()
        self.subs = set()  # subscription ids the replies on this connection gave
        self.task = asyncio.create_task(self.read())

    async def read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                # Several notifications may come packed into one text
                # message: a JSON-RPC batch, that is an array of them.
                packed = len(msg) if isinstance(msg, list) else 0
                for m in msg if isinstance(msg, list) else [msg]:
                    if m.get("method") == "$/publication":
                        if m["params"]["sub"] not in self.subs:
                            # Before the reply that names its subscription
                            # id: the protocol says this does not happen.
                            out("unexpected", conn=self.n, message=m, why="unknown sub")
                        self.pubs.put_nowait((m["params"], packed))
                    elif "method" not in m and m.get("id") in self.pending:
                        result = m.get("result")
                        if isinstance(result, dict) and "sub" in result:
                            self.subs.add(result["sub"])
                        self.pending.pop(m["id"]).set_result(m)
                    else:
                        out("unexpected", conn=self.n, message=m)
        except websockets.ConnectionClosed:
            pass

    async def call(self, method, params):
        self.next_id += 1
        id_ = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.pending[id_] = fut
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}))
        return await asyncio.wait_for(fut, TIMEOUT)

    async def publication(self):
        return await asyncio.wait_for(self.pubs.get(), TIMEOUT)


async def connect(url, n, subprotocols=None):
    ws = await websockets.connect(url, subprotocols=subprotocols, open_timeout=TIMEOUT,
                                  close_timeout=TIMEOUT, ping_interval=None)
    CONNS.append(ws)
    return Conn(ws, n)


async def main(url, topic):
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    n = 1
    conn = await connect(url, n)  # no subprotocol: the connection is JSON-RPC
    reply = await conn.call("$/subscribe", {"topic": topic})
    out("subscribed", conn=n, subprotocol=conn.ws.subprotocol, reply=reply)
    sub = reply["result"]["sub"]
    last = reply["result"]["position"]  # {"offset", "epoch"}: where we are

    def seen(params):
        nonlocal last
        if params["sub"] == sub:
            last = {"offset": params["offset"], "epoch": params["epoch"]}

    while True:
        line = await asyncio.wait_for(stdin.readline(), TIMEOUT)
        if not line:
            return
        cmd = line.decode().split(None, 2)
        if cmd[0] == "wait":
            for _ in range(int(cmd[1])):
                params, packed = await conn.publication()
                seen(params)
                out("publication", conn=n, packed=packed, params=params)
            out("received", conn=n)
        elif cmd[0] == "drop":
            conn.ws.transport.abort()  # no closing handshake: the network failed
            await asyncio.wait_for(conn.task, TIMEOUT)
            while not conn.pubs.empty():  # received but not asked for: the test counts them too
                params, packed = conn.pubs.get_nowait()
                seen(params)
                out("publication", conn=n, packed=packed, params=params)
            out("dropped", conn=n, last=last)
        elif cmd[0] == "reconnect":
            n += 1
            conn = await connect(url, n, subprotocols=["jsonrpc2.0"])
            reply = await conn.call("$/subscribe", {"topic": topic, "since": last})
            out("resubscribed", conn=n, subprotocol=conn.ws.subprotocol, reply=reply)
            if "result" in reply:
                sub = reply["result"]["sub"]
                for p in reply["result"]["publications"]:
                    seen(p)
        elif cmd[0] == "publish":
            t, data = cmd[1], json.loads(cmd[2])
            sreply = await conn.call("$/subscribe", {"topic": t, "echo": True})
            preply = await conn.call("$/publish", {"topic": t, "data": data})
            while True:
                params, packed = await conn.publication()
                if params["topic"] == t:
                    break
                out("publication", conn=n, packed=packed, params=params)
            out("published", conn=n, subscribe=sreply, reply=preply, params=params)
        elif cmd[0] == "deny":
            reply = await conn.call("$/publish", {"topic": cmd[1], "data": "not allowed"})
            out("denied", conn=n, topic=cmd[1], reply=reply)
        elif cmd[0] == "quit":
            await conn.ws.close()
            await asyncio.wait_for(conn.task, TIMEOUT)
            out("done")
            return
        else:
            out("unknown command", line=line.decode())
            return


async def run(url, topic):
    try:
        await main(url, topic)
    finally:
        # On an error, do not spend close_timeout on a closing handshake:
        # exit at once so that the test sees the traceback.
        for ws in CONNS:
            ws.transport.abort()


asyncio.run(run(sys.argv[1], sys.argv[2]))
