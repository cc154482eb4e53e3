"""`mprt serve --ray` on a local Ray cluster on this CPU: 2 CPU replicas of the tiny model (each with its
batcher), synthetic clients relaying frames of the shared driving clip over loopback. Placement spreads
sessions over the replicas and keeps them there, admission refuses beyond the replicas' capacity with a
message, a killed replica's session is told to reconnect and continues on the other one, and a session
whose ingress vanished is closed on its replica. Bounded: every wait has a deadline, the cluster is
shut down at the end."""
import collections
import threading
import time

import pytest

pytest.importorskip("ray.serve", reason="ray[serve] not installed (pip install -e '.[ray]')")

from engine.cli import build_parser  # noqa: E402
from engine.cli.serve_scale import ray_plan, replica_factory  # noqa: E402
from engine.errors import InputError  # noqa: E402
from engine.serve import framecode  # noqa: E402
from serve_helpers import driving_frames, wait_for  # noqa: E402

START_TIMEOUT_S = 900  # two replicas load torch + the tiny model on 2 shared cores


class Client:
    """Relays camera frames to one RemoteSession at `fps` (bounded by the test) and counts outputs."""

    def __init__(self, session, frames, fps=8.0):
        self.session, self.frames, self.fps = session, frames, fps
        self.outputs = 0
        self.replicas_seen = collections.Counter()
        session.on_output = self._output
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _output(self, picture, record):
        self.outputs += 1
        self.replicas_seen[self.session.replica] += 1

    def _send(self):
        i = 0
        while not self._stop.is_set():
            self.session.push_camera(self.frames[i % len(self.frames)])
            i += 1
            time.sleep(1.0 / self.fps)

    def start(self):
        self.session.start()
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def cluster():
    import ray

    from engine.serve import ray_app
    args = build_parser().parse_args(["serve", "--ray", "--replicas", "2", "--max-sessions-per-replica", "2",
                                      "--session-timeout", "5", "--max-batch", "4", "--batch-budget-ms", "20",
                                      "--cpus-per-replica", "0.5"])
    plan = ray_plan(args)
    try:
        handle = ray_app.start_application(replica_factory(args), plan)
    except InputError as err:  # Ray's own start-up limits (its raylet gives its agents ~15 s) on a busy machine
        if "could not start a local Ray cluster" not in str(err):
            raise
        pytest.skip(f"no local Ray cluster on this machine: {err}")
    try:
        yield handle, plan
    finally:
        ray_app.shutdown()
        assert not ray.is_initialized()


@pytest.mark.slow
def test_placement_admission_failover_and_vanished_clients(cluster):
    import ray

    from engine.serve.ray_ingress import RayPlacer, Refused, RemoteSession
    handle, plan = cluster
    frames = [framecode.stamp(f, i) for i, f in enumerate(driving_frames(16, size=64))]
    placer = RayPlacer(handle, attempts=3)
    open_session = lambda: RemoteSession(placer, None, None, "realtime", "builtin")  # noqa: E731
    sessions = [open_session() for _ in range(4)]
    assert sorted(collections.Counter(s.replica for s in sessions).values()) == [2, 2], "spread over both replicas"
    with pytest.raises(Refused, match="full"):
        open_session()  # capacity 2 x 2: the fifth is refused with a message, not queued
    clients = [Client(s, frames).start() for s in sessions]
    try:
        wait_for(lambda: all(c.outputs >= 2 for c in clients), START_TIMEOUT_S, period=1.0,
                 what="outputs on every session")
        assert all(len(c.replicas_seen) == 1 for c in clients), "a session stays on its replica"

        # Free one slot on each replica, then kill one replica: its remaining session moves to the other.
        by_replica = collections.defaultdict(list)
        for c in clients:
            by_replica[c.session.replica].append(c)
        victim, survivor = sorted(by_replica)
        for rid in (victim, survivor):
            leaving = by_replica[rid].pop()
            leaving.stop()
            leaving.session.close()
            clients.remove(leaving)
        moved, stayed = by_replica[victim][0], by_replica[survivor][0]
        kill_replica(ray, victim)
        wait_for(lambda: moved.session.reconnects >= 1, 300, period=0.5, what="the moved session to reconnect")
        assert "reconnect" in (moved.session.snapshot()["notice"] or "") or moved.session.replica != victim
        assert moved.session.replica != victim and moved.session.error is None
        before = moved.outputs
        wait_for(lambda: moved.outputs >= before + 2, 300, period=0.5, what="outputs after the move")
        assert stayed.session.error is None and stayed.session.replica == survivor

        # A vanished ingress: the relay stops without closing; the replica frees the session by itself.
        ghost = stayed.session
        stayed.stop()
        ghost.closed = True
        ghost.inbox.close()
        rid = ghost.replica

        def freed():
            return handle.stats.remote(replica=rid).result(timeout_s=60)["closed_idle"] >= 1
        wait_for(freed, 120, period=1.0, what="the replica to close the abandoned session")
        clients.remove(stayed)
    finally:
        for c in clients:
            c.stop()
            c.session.close()


def kill_replica(ray, replica_id: str) -> None:
    """Kill the Serve replica actor whose id is `replica_id` (as a crash would)."""
    from ray.util import list_named_actors
    for entry in list_named_actors(all_namespaces=True):
        name = entry["name"] if isinstance(entry, dict) else entry
        if replica_id in name:
            ray.kill(ray.get_actor(name, namespace=entry.get("namespace", "serve") if isinstance(entry, dict)
                                   else "serve"), no_restart=True)
            return
    raise AssertionError(f"replica actor {replica_id} not found")
