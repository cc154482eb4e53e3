"""The aiohttp application: the page (from memory), signalling, portrait uploads, stats, access rules.

Routes (nothing maps a request path onto the filesystem: the page's files are read once at start
into a fixed table):
  GET  /                         the page          GET /static/<name>   its script and style
  GET  /api/info                 model, presets, limits, free slots
  GET  /api/portrait/builtin.png the built-in portrait
  POST /api/portrait             upload (raw body) -> {"portrait": id}   413 / 415 / 400 / 422 refused
  POST /api/offer                {sdp, type, preset, driving, portrait} -> answer + session id; 503 busy
  POST /api/session/<id>/close   end a session (the page's Stop, and its pagehide beacon)
  GET  /stats                    server-wide figures (no per-session details)
  GET  /stats/<session id>       that session's figures: only whoever holds its (unguessable) id
"""
from __future__ import annotations

import asyncio
import io
import json
import pathlib
import sys
import time

from engine.errors import InputError
from engine.serve.access import COOKIE, AccessPolicy
from engine.serve.portraits import PortraitStore
from engine.serve.session import DRIVING_MODES, Session
from engine.serve.sessions import Busy, SessionManager
from engine.serve.shared import LIVE_PRESETS, SharedModel
from engine.serve.uploads import UploadError, UploadLimits, decode_portrait

STATIC_DIR = pathlib.Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
MAX_JSON_BYTES = 64 << 10
DRAIN_BYTES = 64 << 20  # an oversized upload is read (and dropped) this far before answering 413
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
       "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'")


def load_static() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: {name: (bytes, content type)}."""
    return {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix]) for p in sorted(STATIC_DIR.iterdir())
            if p.suffix in STATIC_TYPES}


async def _read_body(request, limit: int) -> bytes | None:
    """The whole body, or None when it exceeds `limit` bytes (nothing past the limit is kept)."""
    chunks, size = [], 0
    too_big = request.content_length is not None and request.content_length > limit
    while not too_big:
        chunk = await request.content.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        too_big = size > limit
    # Discard the rest (up to DRAIN_BYTES) so the browser, still sending, gets to read the refusal.
    drained = size
    while drained < DRAIN_BYTES and (chunk := await request.content.read(1 << 16)):
        drained += len(chunk)
    return None


def _png(image) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class ServeApp:
    def __init__(self, shared: SharedModel, policy: AccessPolicy, max_sessions: int = 2,
                 idle_timeout_s: float = 15.0, limits: UploadLimits = UploadLimits(), mirror=None,
                 open_session=None):
        """open_session(portrait, source_code, preset, driving) -> a Session-like object (default: a Session
        on `shared`; `mprt serve --ray`: a RemoteSession on a replica). It raises Busy when full."""
        from aiohttp import web
        self.web, self.shared, self.policy, self.limits = web, shared, policy, limits
        self.manager = SessionManager(max_sessions, idle_timeout_s, mirror)
        self.open_session = open_session or (lambda *a: Session(shared, *a))
        self.portraits = PortraitStore(max_entries=max(16, 4 * max_sessions))
        self.static = load_static()
        self.builtin_png = _png(shared.builtin_portrait)
        self.started = time.monotonic()
        self.app = web.Application(middlewares=[self._make_guard()], client_max_size=limits.max_bytes + (1 << 16))
        r = self.app.router
        r.add_get("/", self._index)
        r.add_get("/static/{name}", self._static_file)
        r.add_get("/api/info", self._info)
        r.add_get("/api/portrait/builtin.png", self._builtin)
        r.add_post("/api/portrait", self._upload)
        r.add_post("/api/offer", self._offer)
        r.add_post("/api/session/{sid}/close", self._close)
        r.add_get("/stats", self._stats)
        r.add_get("/stats/{sid}", self._session_stats)
        self.app.on_startup.append(self._startup)
        self.app.on_shutdown.append(self._shutdown)

    # -- access ---------------------------------------------------------------------------------
    def _error(self, status: int, message: str):
        return self.web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})

    def _make_guard(self):
        web, policy = self.web, self.policy

        @web.middleware
        async def guard(request, handler):
            if not policy.host_ok(request.headers.get("Host")):
                return self._error(403, "this server answers only to localhost names (Host header refused)")
            origin = request.headers.get("Origin")
            if request.method not in ("GET", "HEAD") and origin and origin.split("://", 1)[-1] != request.host:
                return self._error(403, "cross-site request refused")
            query_token = request.query.get("token")
            offered = (query_token or request.cookies.get(COOKIE)
                       or request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or None)
            if not policy.token_ok(offered):
                return self._error(401, "missing or wrong access token: open the URL that `mprt serve` printed")
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # 404 / 405 from routing: a plain JSON error
                return self._error(exc.status, exc.reason)
            if policy.token and query_token:
                response.set_cookie(COOKIE, policy.token, httponly=True, samesite="Strict", secure=policy.tls)
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")  # the token stays out of referrers
            response.headers.setdefault("Cache-Control", "no-store")
            return response
        return guard

    # -- page -----------------------------------------------------------------------------------
    async def _index(self, request):
        body, ctype = self.static["index.html"]
        return self.web.Response(body=body, content_type=ctype, charset="utf-8")

    async def _static_file(self, request):
        item = self.static.get(request.match_info["name"])
        if item is None or item[1] == "text/html":
            return self._error(404, "not found")
        return self.web.Response(body=item[0], content_type=item[1], charset="utf-8")

    async def _builtin(self, request):
        return self.web.Response(body=self.builtin_png, content_type="image/png")

    async def _info(self, request):
        sh = self.shared
        return self.web.json_response({
            "model": sh.description, "size": sh.size, "presets": list(LIVE_PRESETS),
            "driving": list(DRIVING_MODES) if sh.driving_encoder is not None else ["builtin"],
            "random_encoders": sh.random_encoders, "max_sessions": self.manager.max_sessions,
            "sessions": len(self.manager.sessions),
            "upload": {"max_bytes": self.limits.max_bytes, "max_pixels": self.limits.max_pixels,
                       "types": ["image/jpeg", "image/png", "image/webp"]}})

    # -- uploads --------------------------------------------------------------------------------
    async def _upload(self, request):
        data = await _read_body(request, self.limits.max_bytes)
        if data is None:
            return self._error(413, f"portrait upload: over the {self.limits.max_bytes / 2**20:.0f} MiB limit")
        loop = asyncio.get_running_loop()
        try:
            image = await loop.run_in_executor(None, decode_portrait, data, self.limits)
            code = await loop.run_in_executor(None, self.shared.source_code, image, "the uploaded portrait")
        except UploadError as err:
            return self._error(err.status, str(err))
        except InputError as err:  # no face in it
            return self._error(422, f"portrait upload: {err}")
        pid = self.portraits.put(image, code)
        return self.web.json_response({"portrait": pid, "width": int(image.shape[1]), "height": int(image.shape[0])})

    # -- sessions -------------------------------------------------------------------------------
    async def _json(self, request) -> dict:
        raw = await _read_body(request, MAX_JSON_BYTES)
        if raw is None:
            raise InputError(f"request body over {MAX_JSON_BYTES} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            raise InputError("request body: expected JSON") from None
        if not isinstance(body, dict):
            raise InputError("request body: expected a JSON object")
        return body

    async def _offer(self, request):
        try:
            body = await self._json(request)
            sdp, kind = body.get("sdp"), body.get("type")
            if not isinstance(sdp, str) or kind != "offer":
                raise InputError("offer: expected {'sdp': str, 'type': 'offer', ...}")
            preset, driving = str(body.get("preset", "realtime")), str(body.get("driving", "camera"))
            portrait_id = body.get("portrait") or "builtin"
        except InputError as err:
            return self._error(400, str(err))
        try:
            self.manager.reserve()
        except Busy as err:
            return self._error(503, str(err))
        session = None
        try:
            if portrait_id == "builtin":
                portrait, code = self.shared.builtin_portrait, self.shared.builtin_source
            else:
                taken = self.portraits.get(str(portrait_id))
                if taken is None:
                    raise InputError("portrait: unknown or expired upload; upload it again")
                portrait, code = taken
            loop = asyncio.get_running_loop()
            session = await loop.run_in_executor(None, lambda: self.open_session(portrait, code, preset, driving))
            from engine.serve.rtc import RtcSession
            sid = session.id
            rtc = RtcSession(session, loop, on_gone=lambda: loop.create_task(self.manager.close(sid, "peer gone")))
            answer = await rtc.answer(sdp, kind)
        except InputError as err:
            self.manager.unreserve()
            if session is not None:
                session.close()
            return self._error(400, str(err))
        except Busy as err:  # every replica full (mprt serve --ray)
            self.manager.unreserve()
            self.manager.refused_total += 1
            return self._error(503, str(err))
        except BaseException:
            self.manager.unreserve()
            if session is not None:
                session.close()
            raise
        self.manager.add(session.start(), rtc.close)
        print(f"mprt serve: session {session.id[:6]} started ({driving}, preset {preset}, "
              f"{'built-in' if portrait_id == 'builtin' else 'uploaded'} portrait)", file=sys.stderr)
        return self.web.json_response({**answer, "session": session.id})

    async def _close(self, request):
        closed = await self.manager.close(request.match_info["sid"], "closed by the page")
        return self.web.json_response({"closed": closed})

    async def _stats(self, request):
        m = self.manager
        return self.web.json_response({
            "model": self.shared.description, "uptime_s": round(time.monotonic() - self.started, 1),
            "sessions": len(m.sessions), "max_sessions": m.max_sessions, "refused_busy": m.refused_total,
            "closed": m.closed_total, "identities_cached": len(self.shared.identities),
            "uploads_waiting": len(self.portraits)})

    async def _session_stats(self, request):
        session = self.manager.get(request.match_info["sid"])
        if session is None:
            return self._error(404, "no such session")
        return self.web.json_response(session.snapshot())

    # -- lifetime -------------------------------------------------------------------------------
    async def _startup(self, app):
        self._watchdog = asyncio.get_running_loop().create_task(self.manager.watch())

    async def _shutdown(self, app):
        self._watchdog.cancel()
        await self.manager.close_all()
