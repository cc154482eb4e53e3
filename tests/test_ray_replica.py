"""One `mprt serve --ray` replica without a cluster (engine/serve/ray_replica.py): sessions placed on it
stream through its batcher, admission refuses beyond its maximum with a message, an unknown session is
told to reconnect, and a session nobody relays for is closed (its state freed). Frame-local fake backend."""
import asyncio
import time

import pytest

from engine.serve import framecode
from engine.serve.ray_replica import StreamReplica
from serve_helpers import driving_frames, fake_shared, wait_for


@pytest.fixture(scope="module")
def frames():
    return [framecode.stamp(f, i) for i, f in enumerate(driving_frames(8, size=64))]


def run(coro):
    return asyncio.run(coro)


def relay_until_output(replica, sid, frames, timeout=120.0):
    end = time.monotonic() + timeout
    got, i = [], 0
    while not got and time.monotonic() < end:
        reply = run(replica.exchange(sid, frames[i % len(frames)], wait_s=0.2))
        assert "reconnect" not in reply and reply["error"] is None, reply
        got += reply["outputs"]
        i += 1
    assert got, "no output frame"
    return got


def test_sessions_stream_through_the_batcher_and_admission_refuses_beyond_the_maximum(frames):
    replica = StreamReplica(lambda: fake_shared(), max_sessions=2, batching=(8, 0.05), idle_timeout_s=60.0)
    a = run(replica.open(None, None, "realtime", "builtin"))
    b = run(replica.open(None, None, "realtime", "builtin"))
    refused = run(replica.open(None, None, "realtime", "builtin"))
    assert "session" in a and "session" in b
    assert "full" in refused["refused"] and refused["replica"] == replica.id
    assert replica.record_routing_stats() == {"sessions": 2}
    for sid in (a["session"], b["session"]):
        picture, record = relay_until_output(replica, sid, frames)[0]
        assert picture.ndim == 3 and picture.dtype.name == "uint8"
        assert record is None or isinstance(record["code"], int)
    stats = replica.stats()
    assert stats["sessions"] == 2 and stats["refused"] == 1 and stats["batcher"]["calls"] > 0
    assert run(replica.close(a["session"])) and not run(replica.close(a["session"]))
    assert replica.record_routing_stats() == {"sessions": 1}
    run(replica.close(b["session"]))


def test_an_unknown_session_is_told_to_reconnect():
    replica = StreamReplica(lambda: fake_shared(), max_sessions=1)
    reply = run(replica.exchange("no-such-session", None))
    assert "reconnect" in reply and "reconnect" in reply["reconnect"]


def test_a_session_nobody_relays_for_is_closed(frames):
    replica = StreamReplica(lambda: fake_shared(), max_sessions=2, idle_timeout_s=1.0)
    sid = run(replica.open(None, None, "realtime", "builtin"))["session"]
    session = replica.hosted[sid].session
    run(replica.exchange(sid, frames[0], wait_s=0.0))
    wait_for(lambda: sid not in replica.hosted, timeout=30, what="the idle session to be closed")
    assert replica.stats()["closed_idle"] == 1 and session.closed
    assert "reconnect" in run(replica.exchange(sid, frames[1]))
