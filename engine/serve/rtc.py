"""WebRTC glue (aiortc): the browser's camera track into a Session, the session's output frames back
as a video track, and a data channel for stats (server -> page) and control (page -> server)."""
from __future__ import annotations

import asyncio
import fractions
import json
import time

import numpy as np

from engine.serve.session import Session

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
STATS_PERIOD_S = 0.5


# ICE consent (RFC 7675): aioice closes the connection after CONSENT_FAILURES consent checks in a row
# get no answer within 0.5 s (default 6: ~30 s). On a busy machine (the model on the same CPUs as the
# event loop and the browser) answers come later than that while the browser is still there, and
# connections were dropped mid-stream. Liveness is judged by media instead: a session whose camera frames
# stop is closed after --session-timeout, a closed tab at once by the page's pagehide beacon.
CONSENT_FAILURES = 10**9


def _aiortc():
    try:
        import aioice.ice
        import aiortc
        aioice.ice.CONSENT_FAILURES = CONSENT_FAILURES
        return aiortc
    except ImportError:
        from engine.errors import InputError
        raise InputError("mprt serve needs aiortc and aiohttp: pip install -e '.[serve]'") from None


def make_output_track():
    from aiortc import MediaStreamTrack

    class OutputTrack(MediaStreamTrack):
        """The session's newest output frame (older ones are skipped when the encoder is behind)."""
        kind = "video"

        def __init__(self):
            super().__init__()
            self._frame: np.ndarray | None = None
            self._record: dict | None = None
            self._event = asyncio.Event()
            self._t0 = time.perf_counter()
            self.on_sent = lambda record: None

        def offer(self, frame: np.ndarray, record: dict | None) -> None:
            """From the asyncio loop: replace the pending frame."""
            self._frame, self._record = frame, record
            self._event.set()

        async def recv(self):
            from av import VideoFrame
            while self._frame is None:
                if self.readyState != "live":
                    from aiortc.mediastreams import MediaStreamError
                    raise MediaStreamError
                self._event.clear()
                try:
                    await asyncio.wait_for(self._event.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            frame, record, self._frame, self._record = self._frame, self._record, None, None
            out = VideoFrame.from_ndarray(frame, format="rgb24")
            out.pts = int((time.perf_counter() - self._t0) * 90000)
            out.time_base = VIDEO_TIME_BASE
            self.on_sent(record)
            return out

    return OutputTrack()


class RtcSession:
    """One peer connection bound to one Session."""

    def __init__(self, session: Session, loop: asyncio.AbstractEventLoop, on_gone=lambda: None):
        aiortc = _aiortc()
        self.session, self.loop = session, loop
        self.pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))  # no STUN: nothing external
        self.output = make_output_track()
        self.channel = None
        self.tasks: list[asyncio.Task] = []
        self.failed = False
        session.on_output = self._from_session_thread
        self.output.on_sent = self._sent

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "video":
                self.tasks.append(loop.create_task(self._pump_camera(track)))

        def gone():  # the peer left: free the session now rather than at the idle timeout
            if not self.failed:
                self.failed = True
                on_gone()

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            self.channel = channel
            channel.on("message", self._message)
            channel.on("close", gone)  # a closed tab ends its SCTP association at once; ICE notices later

        @self.pc.on("connectionstatechange")
        async def on_state():
            if self.pc.connectionState in ("failed", "closed"):
                gone()

    async def answer(self, sdp: str, kind: str) -> dict:
        from aiortc import RTCSessionDescription
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        self.pc.addTrack(self.output)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.tasks.append(self.loop.create_task(self._send_stats()))
        return {"sdp": self.pc.localDescription.sdp, "type": self.pc.localDescription.type}

    def _from_session_thread(self, frame: np.ndarray, record: dict | None) -> None:
        self.loop.call_soon_threadsafe(self.output.offer, frame, record)

    def _sent(self, record: dict | None) -> None:
        if record is not None:
            self._send({"type": "frame", **record})

    def _send(self, message: dict) -> None:
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            try:
                ch.send(json.dumps(message))
            except Exception:  # the channel closed under us: the watchdog ends the session
                pass

    async def _pump_camera(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.session.push_camera(frame.to_ndarray(format="rgb24"))

    async def _send_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_PERIOD_S)
            self._send({"type": "stats", **self.session.snapshot()})

    def _message(self, text) -> None:
        """Page -> server: {"type": "displayed", "code", "g2g_ms"} | {"type": "preset", "name"} |
        {"type": "client", "fps", "displayed"}; anything else is ignored."""
        s = self.session
        try:
            msg = json.loads(text) if isinstance(text, str) and len(text) < 4096 else None
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        s.touch()
        kind = msg.get("type")
        try:
            if kind == "displayed":
                s.book.displayed(int(msg["code"]), float(msg["g2g_ms"]))
            elif kind == "preset":
                s.set_preset(str(msg.get("name")))
                self._send({"type": "preset", "name": s.preset})
            elif kind == "client":
                s.book.client = {"displayed_fps": float(msg.get("fps", 0)), "displayed": int(msg.get("displayed", 0))}
        except Exception as err:  # a bad value: tell the page, keep the session
            self._send({"type": "error", "message": str(err)})

    async def close(self, reason: str = "closed") -> None:
        self._send({"type": "closed", "reason": reason, "error": self.session.error})
        for task in self.tasks:
            task.cancel()
        self.output.stop()
        await self.pc.close()
