"""mprt serve over HTTP without a browser (frame-local fake backend): routes never reach the
filesystem, Host / Origin / token rules, uploads refused with a message, busy answered with 503,
per-session stats only for their own id."""
import http.client
import io
import json
import urllib.parse

import numpy as np
import pytest

pytest.importorskip("aiohttp", reason="mprt serve needs aiohttp (pip install -e '.[serve]')")
pytest.importorskip("aiortc", reason="mprt serve needs aiortc (pip install -e '.[serve]')")

from engine.serve.access import access_policy  # noqa: E402
from engine.serve.app import ServeApp  # noqa: E402
from engine.serve.server import BackgroundServer  # noqa: E402
from engine.serve.uploads import UploadLimits  # noqa: E402
from serve_helpers import PORTRAIT, fake_shared  # noqa: E402


@pytest.fixture(scope="module")
def shared():
    return fake_shared(landmarker=True)


@pytest.fixture(scope="module")
def server(shared):
    serve = ServeApp(shared, access_policy("127.0.0.1", None, None, None, False), max_sessions=1,
                     limits=UploadLimits(max_bytes=200_000))
    with BackgroundServer(serve) as srv:
        yield srv


def request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)  # the path goes out as written
        hdrs = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def test_page_and_nothing_else_from_disk(server):
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and b"<script src=\"/static/app.js\">" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert request(server, "GET", "/static/app.js")[0] == 200
    for path in ("/static/../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/..%2fapp.py",
                 "/static/index.html", "/static/", "/engine/serve/app.py", "/static/%2Fetc%2Fpasswd",
                 "/../../etc/passwd", "/static/app.js/../../app.py"):
        status, _, body = request(server, "GET", path)
        assert status in (400, 404), path
        assert b"import" not in body and b"root:" not in body, path


def test_host_and_origin_checks(server):
    assert request(server, "GET", "/api/info", headers={"Host": f"evil.example:{server.port}"})[0] == 403
    png = _png()
    status, _, body = request(server, "POST", "/api/portrait", png, {"Origin": "http://evil.example"})
    assert status == 403 and b"cross-site" in body


def _png(size=(64, 64)):
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_refused_with_a_message(server):
    status, _, body = request(server, "POST", "/api/portrait", b"\xff\xd8\xff" + b"\0" * 300_000)
    assert status == 413 and "limit" in json.loads(body)["error"]
    status, _, body = request(server, "POST", "/api/portrait", b"GIF89a not allowed")
    assert status == 415 and "not a JPEG, PNG or WebP" in json.loads(body)["error"]
    status, _, body = request(server, "POST", "/api/portrait", _png())  # a plain colour: no face
    assert status == 422 and "no face" in json.loads(body)["error"]
    status, _, body = request(server, "POST", "/api/portrait", PORTRAIT.read_bytes())
    assert status == 200 and len(json.loads(body)["portrait"]) >= 24


def test_offer_validation_busy_and_stats_isolation(server):
    status, _, body = request(server, "POST", "/api/offer", b"not json")
    assert status == 400 and "JSON" in json.loads(body)["error"]
    offer = json.dumps({"sdp": "v=0", "type": "offer", "portrait": "no-such-upload"}).encode()
    status, _, body = request(server, "POST", "/api/offer", offer)
    assert status == 400 and "upload" in json.loads(body)["error"]
    server.serve.manager.reserve()  # the only slot is taken
    try:
        status, _, body = request(server, "POST", "/api/offer", json.dumps({"sdp": "v=0", "type": "offer"}).encode())
        assert status == 503 and "try again later" in json.loads(body)["error"]
    finally:
        server.serve.manager.unreserve()
    status, _, body = request(server, "GET", "/stats")
    stats = json.loads(body)
    assert status == 200 and stats["sessions"] == 0 and stats["refused_busy"] >= 1
    assert "session" not in json.dumps(stats).replace('"sessions"', "").replace('"max_sessions"', "")
    assert request(server, "GET", "/stats/" + "A" * 32)[0] == 404


def test_token_required_and_kept_in_a_cookie(shared):
    token = "t0ken-" + "x" * 20
    serve = ServeApp(shared, access_policy("127.0.0.1", token, None, None, False))
    with BackgroundServer(serve) as srv:
        assert srv.url.endswith(f"?token={token}")
        for path in ("/", "/api/info", "/stats", "/static/app.js", f"/?token={token}x"):
            status, _, body = request(srv, "GET", path)
            assert status == 401 and b"access token" in body, path
        status, headers, _ = request(srv, "GET", "/?" + urllib.parse.urlencode({"token": token}))
        assert status == 200 and "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        assert request(srv, "GET", "/api/info", headers={"Cookie": f"mprt_token={token}"})[0] == 200
        assert request(srv, "GET", "/api/info", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert request(srv, "GET", "/api/info", headers={"Cookie": "mprt_token=wrong"})[0] == 401
