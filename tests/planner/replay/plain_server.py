"""A plain HTTP inference endpoint for replay tests and the replayer benchmark (not themis code).

`python plain_server.py [--delay-ms MS] [--status CODE]` serves `POST /v2/models/{model}/infer`
and `POST /echo` on 127.0.0.1 at a free port, printing `PORT <n>` on stdout once it
listens. Each request is answered after `--delay-ms` (asyncio.sleep, so requests overlap,
as on a server with many workers) with `--status`. Run as its own process so a test can
kill it mid-replay.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web


def build_app(delay_ms: float, status: int) -> web.Application:
    async def infer(request: web.Request) -> web.Response:
        await request.read()
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        body = {"model_name": request.match_info.get("model", ""), "outputs": []}
        return web.json_response(body, status=status)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v2/models/{model}/infer", infer)
    app.router.add_post("/echo", infer)
    return app


async def serve(delay_ms: float, status: int) -> None:
    runner = web.AppRunner(build_app(delay_ms, status), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp exposes no public accessor
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()
    try:
        try:
            import uvloop

            uvloop.run(serve(args.delay_ms, args.status))
        except ImportError:
            asyncio.run(serve(args.delay_ms, args.status))
    except KeyboardInterrupt:
        sys.exit(0)
