"""A plain JSON-RPC 2.0 client over WebSocket, written against the
specification with Python's `websockets` package only: no wsrpc code.

Usage: client.py URL
Prints one JSON object per line: {"case": name, "reply": <the JSON-RPC reply>}.
"""
import asyncio
import json
import sys

import websockets


async def main(url):
    async with websockets.connect(url) as ws:
        pending = {}

        def out(case, reply):
            print(json.dumps({"case": case, "reply": reply}), flush=True)

        async def reader():
            async for raw in ws:
                msg = json.loads(raw)
                if isinstance(msg, list):
                    pending.pop("batch").set_result(msg)
                elif "method" in msg and "id" in msg:
                    # The server calls us back: answer like any JSON-RPC peer.
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                              "result": {"from": "python", "got": msg.get("params")}}))
                elif "method" in msg:
                    pass  # a notification from the server
                else:
                    pending.pop(msg["id"]).set_result(msg)

        task = asyncio.create_task(reader())

        async def call(case, method, params=None, id_=None):
            id_ = id_ if id_ is not None else case
            req = {"jsonrpc": "2.0", "method": method, "id": id_}
            if params is not None:
                req["params"] = params
            fut = asyncio.get_running_loop().create_future()
            pending[id_] = fut
            await ws.send(json.dumps(req))
            out(case, await asyncio.wait_for(fut, 10))

        await call("echo", "echo", ["hello", 1])
        await call("add", "add", [1, 2, 3.5], id_=7)
        await call("unknown", "no.such.method", [])
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "note", "params": ["from python"]}))
        fut = asyncio.get_running_loop().create_future()
        pending["batch"] = fut
        await ws.send(json.dumps([
            {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": "b1"},
            {"jsonrpc": "2.0", "method": "note", "params": ["in a batch"]},
            {"jsonrpc": "2.0", "method": "echo", "params": {"k": "v"}, "id": "b2"},
        ]))
        out("batch", await asyncio.wait_for(fut, 10))
        await call("callback", "callback", {"method": "client.hello", "params": ["ping"]})
        task.cancel()


asyncio.run(main(sys.argv[1]))
