"""A plain JSON-RPC 2.0 client of wsrpc streams, written against
docs/PROTOCOL.md section 14 with Python's `websockets` and `json` only: no
wsrpc code.

Usage: stream.py URL

1. Calls "countdown" {"from": 20} with "$stream": 4, reads the
   $/stream.item notifications, grants 2 credit with $/stream.credit every
   time it has read 2, and checks that it never receives more than it
   granted; then reads the final result.
2. Calls it again with a string id and an interval, cancels it
   ($/cancelRequest) after 3 results, and checks that the stream stops (a
   few results may already be on the way) and that no reply comes.
3. Calls it without "$stream": a plain call gets one result.

It prints one JSON object on stdout with what it saw. Every read is bounded
by TIMEOUT seconds.
"""
import asyncio
import json
import sys

import websockets

TIMEOUT = 5


async def messages(ws):
    """Yields the JSON-RPC objects received (a batch is split)."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
        msg = json.loads(raw)
        for m in msg if isinstance(msg, list) else [msg]:
            yield m


async def main(url):
    report = {}
    async with websockets.connect(url) as ws:
        it = messages(ws)

        # 1. A stream under credit.
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "countdown",
                                  "params": {"from": 20}, "$stream": 4}))
        granted, items, over = 4, [], 0
        while True:
            m = await it.__anext__()
            if m.get("method") == "$/stream.item":
                assert m["params"]["id"] == 1, m
                items.append(m["params"]["item"])
                if len(items) > granted:
                    over += 1
                if len(items) % 2 == 0:
                    granted += 2
                    await ws.send(json.dumps({"jsonrpc": "2.0", "method": "$/stream.credit",
                                              "params": {"id": 1, "credit": 2}}))
                continue
            assert m.get("id") == 1, m
            report["items"] = items
            report["over_credit"] = over
            report["final"] = m.get("result")
            break

        # 2. Cancelled after three results. A cancelled call gets no reply
        # (section 5): results already on the way may still come.
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": "c-1", "method": "countdown",
                                  "params": {"from": 1000, "interval_ms": 10}, "$stream": 8}))
        got, replied = [], False
        while len(got) < 3:
            m = await it.__anext__()
            assert m.get("method") == "$/stream.item" and m["params"]["id"] == "c-1", m
            got.append(m["params"]["item"])
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "$/cancelRequest",
                                  "params": {"id": "c-1"}}))
        late = 0
        try:
            while True:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
                msg = json.loads(raw)
                for m in msg if isinstance(msg, list) else [msg]:
                    if m.get("method") == "$/stream.item":
                        late += 1
                    elif m.get("id") == "c-1":
                        replied = True
        except asyncio.TimeoutError:
            pass
        report["cancelled_after"] = len(got)
        report["late_items"] = late
        report["cancel_replied"] = replied

        # 3. A plain call: no stream.
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "countdown", "params": {"from": 3}}))
        m = await it.__anext__()
        report["plain"] = m.get("result")
        report["plain_was_item"] = m.get("method") == "$/stream.item"
    print(json.dumps(report), flush=True)


asyncio.run(main(sys.argv[1]))
