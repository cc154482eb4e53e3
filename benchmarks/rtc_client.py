"""A synthetic `mprt serve` client: what the page does, in Python (aiortc), for load benchmarks.

It sends camera frames (the shared driving clip, looped, at a fixed frame rate, each stamped with its
frame code like the page's camera) over WebRTC, reads the code below every output frame it receives,
and times each one from its send (latency on the client's clock: encode, network, server, decode).
Bounded: it stops after `seconds`, and every wait has a timeout. Loopback only (no ICE servers).
"""
from __future__ import annotations

import asyncio
import dataclasses
import fractions
import json
import time
import urllib.error
import urllib.request

import numpy as np


@dataclasses.dataclass
class ClientResult:
    started: bool = False
    refused: str | None = None       # the server's message when it turned the session away
    error: str | None = None
    sent: int = 0
    sent_measured: int = 0           # camera frames sent after the first output (the measured span)
    received: int = 0                # output frames whose code was read
    unreadable: int = 0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    first_output_s: float | None = None
    seconds: float = 0.0             # measured span (after the first output)
    notices: list[str] = dataclasses.field(default_factory=list)


def post_json(url: str, body: dict, timeout: float) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read())
        except ValueError:
            return err.code, {"error": str(err)}


def make_camera_track(frames: list[np.ndarray], fps: float, sent_at: dict, result: ClientResult):
    from aiortc import MediaStreamTrack
    from av import VideoFrame

    from engine.serve import framecode

    class Camera(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self.n = 0
            self.t0 = None

        async def recv(self):
            if self.t0 is None:
                self.t0 = time.perf_counter()
            due = self.t0 + self.n / fps
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            code = self.n % framecode.CODE_MOD
            picture = framecode.stamp(frames[self.n % len(frames)], code)
            out = VideoFrame.from_ndarray(picture, format="rgb24")
            out.pts, out.time_base = int(self.n * 90000 / fps), fractions.Fraction(1, 90000)
            sent_at[code] = time.perf_counter()
            self.n += 1
            result.sent += 1
            return out

    return Camera()


async def run_client(base_url: str, frames: list[np.ndarray], fps: float, seconds: float,
                     preset: str = "realtime", driving: str = "builtin", connect_timeout: float = 120.0
                     ) -> ClientResult:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from engine.serve import framecode
    result = ClientResult()
    sent_at: dict[int, float] = {}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("mprt")
    first = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    @channel.on("message")
    def on_message(text):
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if msg.get("type") == "stats" and msg.get("notice") and msg["notice"] not in result.notices:
            result.notices.append(msg["notice"])

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - track ended
                return
            now = time.perf_counter()
            code = framecode.split(frame.to_ndarray(format="rgb24"))[1]
            if code is None or code not in sent_at:
                result.unreadable += 1
                continue
            result.received += 1
            result.latencies_ms.append((now - sent_at.pop(code)) * 1000)
            if not first.done():
                first.set_result(now)

    tasks = []

    @pc.on("track")
    def on_track(track):
        tasks.append(loop.create_task(consume(track)))

    pc.addTransceiver(make_camera_track(frames, fps, sent_at, result), direction="sendrecv")
    sid = None
    t_start = time.perf_counter()
    try:
        await pc.setLocalDescription(await pc.createOffer())
        status, answer = await asyncio.to_thread(post_json, base_url + "api/offer", {
            "sdp": pc.localDescription.sdp, "type": "offer", "preset": preset, "driving": driving,
            "portrait": "builtin"}, connect_timeout)
        if status != 200:
            if status == 503:
                result.refused = answer.get("error", f"HTTP {status}")
            else:
                result.error = answer.get("error", f"HTTP {status}")
            return result
        sid = answer["session"]
        result.started = True
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        try:
            t_first = await asyncio.wait_for(first, connect_timeout)
        except asyncio.TimeoutError:
            result.error = f"no output frame within {connect_timeout:.0f} s"
            return result
        result.first_output_s = t_first - t_start
        result.latencies_ms.clear()  # steady state only: from the first output on
        result.received, sent0 = 0, result.sent
        await asyncio.sleep(seconds)
        result.seconds = time.perf_counter() - t_first
        result.sent_measured = result.sent - sent0
    except Exception as err:  # noqa: BLE001 - recorded per client
        result.error = f"{type(err).__name__}: {err}"
    finally:
        for task in tasks:
            task.cancel()
        if sid is not None:
            await asyncio.to_thread(post_json, base_url + f"api/session/{sid}/close", {}, 30.0)
        await pc.close()
    return result


async def run_clients(base_url: str, n: int, frames, fps: float, seconds: float, stagger_s: float = 0.3,
                      **kwargs) -> list[ClientResult]:
    async def one(i):
        await asyncio.sleep(i * stagger_s)
        return await run_client(base_url, frames, fps, seconds, **kwargs)
    return list(await asyncio.gather(*(one(i) for i in range(n))))
