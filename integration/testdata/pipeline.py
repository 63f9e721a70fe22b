"""Sends N JSON-RPC echo calls back to back without waiting for replies,
then reads the N replies, with Python's `websockets` package only.

Usage: pipeline.py URL N
Prints one JSON object: {"ok": ..., "refused": ..., "other": ...}; refused
counts -32003 (busy) errors.
"""
import asyncio
import json
import sys

import websockets


async def main(url, n):
    async with websockets.connect(url, max_size=None) as ws:
        for i in range(n):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "echo", "params": ["p%d" % i]}))
        counts = {"ok": 0, "refused": 0, "other": 0}
        for _ in range(n):
            msg = json.loads(await ws.recv())
            if "result" in msg and msg["result"] == ["p%d" % msg["id"]]:
                counts["ok"] += 1
            elif msg.get("error", {}).get("code") == -32003:
                counts["refused"] += 1
            else:
                counts["other"] += 1
        print(json.dumps(counts), flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
