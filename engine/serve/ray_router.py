"""Ray Serve request router that keeps a session on its replica (Ray Serve's RequestRouter API).

A session's state (tracker, sampler queue, identity K/V) lives in one replica, so every call for it
must reach that replica: calls carry `replica=<replica id>` and go there. A call whose replica is gone
goes to any live replica, which answers "reconnect" (the ingress then opens the session elsewhere).
Opening a session (`replica=None`) prefers the replicas with the fewest sessions (each replica reports
its count through `record_routing_stats`, refreshed here between reports as opens are routed) and
skips those in `exclude=[...]` (replicas that already refused it as full).
"""
from __future__ import annotations

import time
from typing import List, Optional

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

SESSIONS_STAT = "sessions"


class SessionRouter(RequestRouter):
    def initialize_state(self, **kwargs):
        self._opened: dict[str, tuple[int, float]] = {}  # replica id -> (opens routed since its report, when)

    def _sessions(self, replica: RunningReplica) -> int:
        rid = replica.replica_id.unique_id
        reported = int((replica.routing_stats or {}).get(SESSIONS_STAT, 0))
        opened, when = getattr(self, "_opened", {}).get(rid, (0, 0.0))
        return reported + (opened if time.monotonic() - when < 5.0 else 0)

    async def choose_replicas(self, candidate_replicas: List[RunningReplica],
                              pending_request: Optional[PendingRequest] = None) -> List[List[RunningReplica]]:
        if not candidate_replicas:
            return []
        kwargs = pending_request.kwargs if pending_request is not None else {}
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # a busy target: wait, do not spin
        target = kwargs.get("replica")
        if target:
            same = [r for r in candidate_replicas if r.replica_id.unique_id == target]
            if same:
                return [same]
            return [candidate_replicas]  # gone: any live replica answers "reconnect"
        exclude = set(kwargs.get("exclude") or ())
        allowed = [r for r in candidate_replicas if r.replica_id.unique_id not in exclude] or candidate_replicas
        ranked = sorted(allowed, key=self._sessions)
        return [[r] for r in ranked]

    def on_request_routed(self, pending_request: PendingRequest, replica_id, result) -> None:
        if pending_request is not None and pending_request.metadata.call_method == "open":
            if not hasattr(self, "_opened"):
                self._opened = {}
            opened, _ = self._opened.get(replica_id.unique_id, (0, 0.0))
            self._opened[replica_id.unique_id] = (opened + 1, time.monotonic())
