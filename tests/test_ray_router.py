"""The session router of `mprt serve --ray` (engine/serve/ray_router.py): calls for a session go to its
replica, a call whose replica is gone goes to any live one, new sessions go to the emptiest replica
not excluded. Pure routing logic on stand-in replicas (Ray Serve's RequestRouter API, no cluster)."""
import asyncio
import types

import pytest

pytest.importorskip("ray.serve.request_router", reason="ray[serve] not installed (pip install -e '.[ray]')")

from engine.serve.ray_router import SessionRouter  # noqa: E402


def replica(rid: str, sessions: int):
    return types.SimpleNamespace(replica_id=types.SimpleNamespace(unique_id=rid),
                                 routing_stats={"sessions": sessions})


def request(method: str = "exchange", **kwargs):
    return types.SimpleNamespace(kwargs=kwargs, metadata=types.SimpleNamespace(call_method=method),
                                 routing_context=types.SimpleNamespace(should_backoff=False))


@pytest.fixture
def router():
    r = object.__new__(SessionRouter)  # the routing policy alone, without a live handle
    r.initialize_state()
    return r


def choose(router, replicas, req):
    return asyncio.run(router.choose_replicas(replicas, req))


def ids(ranks):
    return [[r.replica_id.unique_id for r in rank] for rank in ranks]


def test_a_session_call_goes_to_its_replica(router):
    reps = [replica("a", 3), replica("b", 0), replica("c", 1)]
    req = request(replica="c")
    assert ids(choose(router, reps, req)) == [["c"]]
    assert req.routing_context.should_backoff  # a busy target: wait for it, never reroute


def test_a_call_whose_replica_is_gone_goes_to_any_live_one(router):
    reps = [replica("a", 3), replica("b", 0)]
    assert ids(choose(router, reps, request(replica="dead"))) == [["a", "b"]]


def test_new_sessions_go_to_the_emptiest_replica_first_skipping_excluded(router):
    reps = [replica("a", 3), replica("b", 0), replica("c", 1)]
    assert ids(choose(router, reps, request("open", replica=None))) == [["b"], ["c"], ["a"]]
    assert ids(choose(router, reps, request("open", replica=None, exclude=["b"]))) == [["c"], ["a"]]
    # every replica excluded (all refused once): try them all again rather than route nowhere
    assert ids(choose(router, reps, request("open", exclude=["a", "b", "c"]))) == [["b"], ["c"], ["a"]]


def test_opens_routed_since_the_last_report_count_until_the_next_one(router):
    reps = [replica("a", 0), replica("b", 1)]
    for _ in range(2):
        router.on_request_routed(request("open"), reps[0].replica_id, None)
    # a: reported 0 + 2 just routed > b: 1
    assert ids(choose(router, reps, request("open")))[0] == ["b"]
    router.on_request_routed(request("exchange"), reps[1].replica_id, None)  # not an open: not counted
    assert router._sessions(reps[1]) == 1


def test_no_replicas_no_choice(router):
    assert choose(router, [], request("open")) == []
