"""A server session without a browser or network, on the frame-local fake backend: stamped camera
frames in, stamped output frames out with the same codes; newest frame kept when behind; preset
switch; identity shared by image hash and freed on close; camera driving through real MediaPipe."""
import threading
import time

import numpy as np
import pytest

from engine.errors import InputError
from engine.serve import framecode
from engine.serve.session import Session
from serve_helpers import LANDMARKER, driving_frames, fake_shared, stamped, wait_for


class Collector:
    def __init__(self):
        self.frames, self.records, self.lock = [], [], threading.Lock()

    def __call__(self, frame, record):
        with self.lock:
            self.frames.append(frame)
            self.records.append(record)

    def codes(self):
        with self.lock:
            return [framecode.split(f)[1] for f in self.frames]


@pytest.fixture(scope="module")
def shared():
    return fake_shared()


def feed(session, frames, period=0.0):
    for f in frames:
        session.push_camera(f)
        if period:
            time.sleep(period)


class Camera:
    """Pushes stamped frames (codes counting up from `first_code`) every `period` s until stopped, like a camera."""

    def __init__(self, session, picture, period=0.03, first_code=0):
        self.session, self.picture, self.period, self.code = session, picture, period, first_code
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            pic = self.picture(self.code) if callable(self.picture) else self.picture
            self.session.push_camera(framecode.stamp(pic, self.code))
            self.code += 1
            time.sleep(self.period)

    def close(self):
        self.stop.set()
        self.thread.join()


def test_builtin_session_carries_codes_through_and_frees_on_close(shared):
    out = Collector()
    s = Session(shared, shared.builtin_portrait, shared.builtin_source, "realtime", "builtin", on_output=out).start()
    assert len(shared.identities) == 1
    cam = Camera(s, np.full((64, 64, 3), 90, np.uint8), first_code=1000)  # codes wrap past 1023
    wait_for(lambda: len(out.frames) >= 8, 120, what="8 output frames")
    cam.close()
    codes = out.codes()
    sent = [(1000 + i) % framecode.CODE_MOD for i in range(cam.code - 1000)]
    assert all(c in sent for c in codes) and codes == sorted(codes, key=sent.index)  # in order, each from an input
    frame = out.frames[0]
    size = shared.size
    assert frame.shape == (size + framecode.strip_height(2 * size), 2 * size, 3)  # [guidance | output] + strip
    assert frame[:size, :size].std() > 0  # the guidance render of that frame is there, not blank
    rec = [r for r in out.records if r][0]
    assert rec["server_ms"] >= rec["compute_ms"] >= 0 and rec["wait_ms"] >= 0
    snap = s.snapshot()
    assert snap["frames_in"] == cam.code - 1000 and snap["latency"]["frames_out"] >= len(out.frames) >= 8
    assert "unet" in snap["stages"]
    s.close()
    assert not s.running and len(shared.identities) == 0 and s.identity is None


def test_newest_frame_kept_when_behind_and_preset_switch(shared):
    out = Collector()
    s = Session(shared, shared.builtin_portrait, shared.builtin_source, "realtime", "builtin", on_output=out)
    feed(s, stamped([np.zeros((32, 32, 3), np.uint8)] * 30))  # before the stream starts: all but the newest drop
    assert s.inbox.dropped == 29
    s.start()
    cam = Camera(s, np.zeros((32, 32, 3), np.uint8), first_code=100)
    wait_for(lambda: out.frames, 120, what="output with the first preset")
    s.set_preset("balanced")
    assert s.preset == "balanced"
    switched = cam.code
    wait_for(lambda: any(c is not None and c >= switched for c in out.codes()), 120,
             what="output after the preset switch")
    cam.close()
    with pytest.raises(InputError, match="preset"):
        s.set_preset("quality")  # needs the whole clip
    s.close()
    assert len(shared.identities) == 0


def test_two_sessions_share_one_identity_per_portrait(shared):
    other = np.full_like(shared.builtin_portrait, 120)
    a = Session(shared, shared.builtin_portrait, shared.builtin_source, driving="builtin")
    b = Session(shared, shared.builtin_portrait.copy(), shared.builtin_source, driving="builtin")
    c = Session(shared, other, shared.builtin_source, driving="builtin")
    assert a.identity_key == b.identity_key != c.identity_key and len(shared.identities) == 2
    for s in (a, b, c):
        s.close()
    assert len(shared.identities) == 0
    assert a.id != b.id and len(a.id) >= 32  # unguessable ids (192 random bits)


def test_unstamped_frames_still_drive(shared):
    out = Collector()
    s = Session(shared, shared.builtin_portrait, shared.builtin_source, driving="builtin", on_output=out).start()
    stop = threading.Event()

    def camera():  # frames without a code strip
        while not stop.is_set():
            s.push_camera(np.full((48, 48, 3), 50, np.uint8))
            time.sleep(0.02)
    threading.Thread(target=camera, daemon=True).start()
    wait_for(lambda: out.frames, 120, what="an output frame")
    stop.set()
    assert s.snapshot()["unstamped"] > 0 and all(c is None for c in out.codes())
    s.close()


def test_bad_session_options(shared):
    with pytest.raises(InputError, match="preset"):
        Session(shared, shared.builtin_portrait, shared.builtin_source, preset="quality", driving="builtin")
    with pytest.raises(InputError, match="camera driving is not available"):
        Session(shared, shared.builtin_portrait, shared.builtin_source, driving="camera")


def test_camera_session_tracks_real_faces():
    """MediaPipe (real model) + random DECA/SMIRK on the shared driving video: faces found, maps rendered."""
    if not LANDMARKER.is_file():
        pytest.skip(f"{LANDMARKER} not found (../shared assets)")
    pytest.importorskip("mediapipe", reason="face tracking needs mediapipe (pip install -e '.[face]')")
    shared = fake_shared(landmarker=True)
    out = Collector()
    s = Session(shared, shared.builtin_portrait, shared.builtin_source, "realtime", "camera", on_output=out).start()
    frames = driving_frames(24)
    cam = Camera(s, lambda code: frames[code % len(frames)], period=0.05)
    wait_for(lambda: len(out.frames) >= 2, 180, what="output frames")
    cam.close()
    snap = s.snapshot()
    assert snap["no_face"] == 0 and snap["latency"]["track"]["count"] >= 1
    s.close()
