"""Starting and stopping the server: in the foreground (`mprt serve`) or on a background thread
(tests, benchmarks), on a given or a free port, over http or https."""
from __future__ import annotations

import asyncio
import ssl
import threading

from engine.serve.app import ServeApp


def ssl_context(cert: str | None, key: str | None):
    if not cert:
        return None
    from engine.errors import InputError
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise InputError(f"--tls-cert {cert} / --tls-key {key}: cannot load ({err})") from None
    return ctx


def url_for(serve: ServeApp, port: int) -> str:
    p = serve.policy
    host = "127.0.0.1" if p.host in ("0.0.0.0", "::") else p.host
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if p.tls else 'http'}://{host}:{port}/" + (f"?token={p.token}" if p.token else "")


async def start(serve: ServeApp, port: int, tls=None):
    """-> (runner, bound port). Port 0 takes a free one."""
    from aiohttp import web
    runner = web.AppRunner(serve.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, serve.policy.host, port, ssl_context=tls)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    return runner, bound


class BackgroundServer:
    """The server on its own event loop thread: `with BackgroundServer(serve) as srv: srv.url`."""

    def __init__(self, serve: ServeApp, port: int = 0, tls=None):
        self.serve, self.port, self.tls = serve, port, tls
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mprt-serve", daemon=True)
        self.runner = None

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        self.runner, self.port = self.call(start(self.serve, self.port, self.tls))
        self.url = url_for(self.serve, self.port)
        return self

    def call(self, coro, timeout: float = 60.0):
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc) -> None:
        if self.runner is not None:
            self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def run_forever(serve: ServeApp, port: int, tls=None, announce=print) -> None:
    async def main():
        runner, bound = await start(serve, port, tls)
        announce(url_for(serve, bound))
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
