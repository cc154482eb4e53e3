"""mprt serve pieces without a browser: the frame code (also through a real VP8 round trip), upload
checks, bind/token rules, the shared identity cache, the newest-frame inbox, the latency book."""
import io

import numpy as np
import pytest

from engine.errors import InputError
from engine.serve import framecode
from engine.serve.access import access_policy
from engine.serve.identities import IdentityCache
from engine.serve.inbox import NewestFrame
from engine.serve.latency import LatencyBook
from engine.serve.uploads import UploadError, UploadLimits, decode_portrait, sniff


def picture(h=128, w=128, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("width", [256, 128, 200, 320])
def test_frame_code_round_trip_every_code(width):
    img = picture(96, width)
    for code in range(framecode.CODE_MOD):
        stamped = framecode.stamp(img, code)
        assert stamped.shape == (96 + framecode.strip_height(width), width, 3)
        top, read = framecode.split(stamped)
        assert read == code and np.array_equal(top, img)


def test_frame_code_rejects_noise_and_single_bit_errors():
    assert framecode.read(np.full((16, 256, 3), 128, np.uint8)) is None  # no contrast
    stamped = framecode.stamp(picture(64, 256), 613)
    strip = stamped[64:].copy()
    edges = np.floor(np.arange(framecode.CELLS + 1) * 256 / framecode.CELLS + 0.5).astype(int)
    for cell in range(2, framecode.CELLS):  # flip one data/check cell: the check catches it
        bad = strip.copy()
        bad[:, edges[cell]:edges[cell + 1]] = 255 - bad[:, edges[cell]:edges[cell + 1]]
        assert framecode.read(bad) is None


def test_frame_code_survives_vp8_at_a_low_bitrate():
    """The codes are read back from frames after a real VP8 encode/decode (libvpx through PyAV)."""
    import av
    width, height, frames = 256, 256, 24
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height + framecode.strip_height(width), "yuv420p"
        stream.bit_rate = 150_000
        for i in range(frames):
            img = picture(height, width, seed=i)  # noise: the hardest picture for the encoder above the strip
            frame = av.VideoFrame.from_ndarray(framecode.stamp(img, 1000 + i), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        codes = [framecode.split(f.to_ndarray(format="rgb24"))[1] for f in inp.decode(video=0)]
    assert codes == [(1000 + i) % framecode.CODE_MOD for i in range(frames)]


def _encode(fmt, size=(64, 64), **kw):
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_uploads_sniffed_limited_and_exif_applied():
    from PIL import Image
    assert sniff(_encode("PNG")) == "PNG" and sniff(_encode("JPEG")) == "JPEG" and sniff(_encode("WEBP")) == "WEBP"
    assert decode_portrait(_encode("PNG", (80, 64))).shape == (64, 80, 3)
    with pytest.raises(UploadError) as e:  # the type comes from the bytes: a script named .jpg is refused
        decode_portrait(b"<script>alert(1)</script>" + b" " * 100)
    assert e.value.status == 415 and "not a JPEG, PNG or WebP" in str(e.value)
    with pytest.raises(UploadError) as e:
        decode_portrait(_encode("PNG"), UploadLimits(max_bytes=100))
    assert e.value.status == 413 and "limit" in str(e.value)
    with pytest.raises(UploadError) as e:  # decoded-size limit from the header, before decoding
        decode_portrait(_encode("PNG", (300, 300)), UploadLimits(max_pixels=300 * 299))
    assert e.value.status == 413 and "pixel limit" in str(e.value)
    with pytest.raises(UploadError) as e:  # a PNG signature on garbage
        decode_portrait(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    assert e.value.status == 400
    # EXIF orientation 6 (rotate 90 clockwise to display): a 160x80 stored image is shown 80x160
    img = Image.new("RGB", (160, 80), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 80))  # white band on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    upright = decode_portrait(buf.getvalue())
    assert upright.shape == (160, 80, 3)
    assert upright[:10].mean() > 200 and upright[-10:].mean() < 50  # the left band is now on top
    big = decode_portrait(_encode("PNG", (2000, 1000)), UploadLimits(max_side=500))
    assert big.shape == (250, 500, 3)
    with pytest.raises(UploadError, match="too small") as e:
        decode_portrait(_encode("PNG", (80, 40)))
    assert e.value.status == 400


def test_uploads_convert_like_files_on_disk():
    """Transparency is composited on white (not dropped to whatever colour the hidden pixels have);
    16-bit samples are scaled to 8 bits (not clipped to two levels); the same as engine.io.images."""
    from PIL import Image
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 255  # red, but only the left half is opaque
    rgba[:, :32, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    out = decode_portrait(buf.getvalue())
    assert (out[:, :32] == (255, 0, 0)).all() and (out[:, 32:] == 255).all()
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")  # 16-bit greyscale
    out = decode_portrait(buf.getvalue())
    assert out.shape == (64, 64, 3) and len(np.unique(out)) > 32 and out[0, 0, 0] == 0 and out[0, -1, 0] == 255


def test_bind_rules():
    p = access_policy("127.0.0.1", None, None, None, False)
    assert p.token is None and p.token_ok(None) and p.loopback_only
    assert p.host_ok("127.0.0.1:8080") and p.host_ok("localhost:1") and p.host_ok("[::1]:80")
    assert not p.host_ok("evil.example:8080") and not p.host_ok(None)  # DNS rebinding
    with pytest.raises(InputError, match="--tls-cert"):
        access_policy("0.0.0.0", None, None, None, False)
    p = access_policy("0.0.0.0", None, None, None, True)
    assert p.token and len(p.token) >= 24 and not p.token_ok(None) and not p.token_ok("x" * 32)
    assert p.token_ok(p.token) and p.host_ok("anything:1")
    assert access_policy("0.0.0.0", "a" * 20, "c.pem", "k.pem", False).token == "a" * 20
    with pytest.raises(InputError, match="go together"):
        access_policy("0.0.0.0", None, "c.pem", None, False)
    with pytest.raises(InputError, match="16"):
        access_policy("127.0.0.1", "short", None, None, False)
    assert access_policy("127.0.0.1", "t" * 16, None, None, False).token == "t" * 16  # localhost may have one


def test_identity_cache_shares_and_frees():
    calls = []
    cache = IdentityCache(lambda img: calls.append(1) or f"kv{len(calls)}")
    a, b = picture(seed=1), picture(seed=2)
    ka, kva = cache.acquire(a)
    ka2, kva2 = cache.acquire(a.copy())  # same pixels: same entry, computed once
    kb, kvb = cache.acquire(b)
    assert ka == ka2 and kva == kva2 and kb != ka and len(calls) == 2 and len(cache) == 2
    cache.release(ka)
    assert len(cache) == 2
    cache.release(ka2)
    cache.release(kb)
    assert len(cache) == 0  # the last user left: freed
    kp, _ = cache.acquire(a, pin=True)
    cache.release(kp)
    assert len(cache) == 1  # pinned (the built-in portrait) stays


def test_inbox_keeps_the_newest():
    box = NewestFrame()
    for i in range(5):
        box.put(i)
    assert box.take() == 4 and box.dropped == 4 and box.received == 5
    box.close()
    assert box.take() is None


def test_latency_book_joins_page_reports():
    book = LatencyBook()
    book.started(7, received=10.0, started=10.1, track_s=0.05, render_s=0.02)
    rec = book.finished(7, now=10.5)
    assert rec["wait_ms"] == pytest.approx(100) and rec["compute_ms"] == pytest.approx(400)
    assert rec["server_ms"] == pytest.approx(500)
    assert book.finished(8, now=11.0) is None  # never started (dropped before tracking): no record
    joined = book.displayed(7, 650.0)
    assert joined["transport_ms"] == pytest.approx(150)
    assert book.displayed(7, 650.0) is None  # matched once
    s = book.summary()
    assert s["glass_to_glass"]["p50_ms"] == 650.0 and s["share"]["transport"] == pytest.approx(150 / 650, abs=1e-3)
