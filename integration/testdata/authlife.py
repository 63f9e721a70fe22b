"""A plain JSON-RPC 2.0 client of wsrpc's authentication lifetime, written
against docs/PROTOCOL.md section 15 with Python's `websockets` and `json`
only: no wsrpc code.

Usage: authlife.py URL TOKEN NEXT_TOKEN EXPIRED_TOKEN

1. Opens the connection with "Authorization: Bearer TOKEN" and reads the
   $/auth.expiry notification.
2. Refreshes with NEXT_TOKEN ($/auth.refresh), then tries EXPIRED_TOKEN
   and no params, which the server refuses.
3. Stops refreshing and waits for the server to close the connection at
   the expiry NEXT_TOKEN set.

It prints one JSON object on stdout with what it saw. Every read is bounded
by TIMEOUT seconds.
"""
import asyncio
import inspect
import json
import sys

import websockets

TIMEOUT = 10


def header_arg():
    """The name of connect's argument for request headers: it changed in
    websockets 14."""
    params = inspect.signature(websockets.connect).parameters
    return "additional_headers" if "additional_headers" in params else "extra_headers"


async def main(url, token, next_token, expired_token):
    report = {}
    headers = {"Authorization": "Bearer " + token}
    async with websockets.connect(url, **{header_arg(): headers}) as ws:
        async def call(id, params):
            msg = {"jsonrpc": "2.0", "id": id, "method": "$/auth.refresh"}
            if params is not None:
                msg["params"] = params
            await ws.send(json.dumps(msg))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if m.get("id") == id:
                    return m

        m = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert m.get("method") == "$/auth.expiry", m
        report["expiry"] = m["params"]["expiresIn"]

        reply = await call(1, {"token": next_token})
        report["refreshed"] = reply["result"]["expiresIn"]
        report["expired_code"] = (await call(2, {"token": expired_token}))["error"]["code"]
        report["no_params_code"] = (await call(3, None))["error"]["code"]

        try:
            while True:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        except websockets.ConnectionClosed as e:
            rcvd = getattr(e, "rcvd", None)
            report["close_code"] = rcvd.code if rcvd is not None else e.code
            report["close_reason"] = rcvd.reason if rcvd is not None else e.reason
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
