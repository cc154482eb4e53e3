"""Admission and lifetime of sessions: at most `max_sessions` (beyond: busy, never a queue), idle ones
closed after `idle_timeout_s`, every close frees the session's state and its transport. With a
`mirror` sink (a virtual camera), the oldest running session's output is also sent there."""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Awaitable, Callable

from engine.serve.session import Session

Closer = Callable[[str], Awaitable[None]]  # reason -> closes the transport


class Busy(Exception):
    """All session slots are taken."""


class SessionManager:
    def __init__(self, max_sessions: int, idle_timeout_s: float = 15.0, mirror=None):
        self.max_sessions, self.idle_timeout_s, self.mirror = max_sessions, idle_timeout_s, mirror
        self.sessions: dict[str, Session] = {}
        self._closers: dict[str, Closer] = {}
        self._reserved = 0
        self.closed_total = 0
        self.refused_total = 0

    @property
    def slots_in_use(self) -> int:
        """Running sessions plus those still starting."""
        return len(self.sessions) + self._reserved

    def reserve(self) -> None:
        """Take a slot before the (slow) session start; raises Busy when none is free."""
        if self.slots_in_use >= self.max_sessions:
            self.refused_total += 1
            raise Busy(f"busy: {self.max_sessions} session(s) running, the most this server takes; try again later")
        self._reserved += 1

    def unreserve(self) -> None:
        self._reserved -= 1

    def add(self, session: Session, closer: Closer) -> None:
        """Register a started session (its reserved slot becomes the session's)."""
        self._reserved -= 1
        session.touch()  # its idle clock starts now, not when its (possibly slow) construction began
        self.sessions[session.id] = session
        self._closers[session.id] = closer
        self._assign_mirror()

    def _assign_mirror(self) -> None:
        if self.mirror is not None and not any(s.mirror is not None for s in self.sessions.values()):
            oldest = min(self.sessions.values(), key=lambda s: s.created, default=None)
            if oldest is not None:
                oldest.mirror = self.mirror

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id) if isinstance(session_id, str) else None

    async def close(self, session_id: str, reason: str = "closed") -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        closer = self._closers.pop(session_id, None)
        self.closed_total += 1
        print(f"mprt serve: session {session_id[:6]} closed ({reason})", file=sys.stderr)
        session.mirror = None
        self._assign_mirror()
        if closer is not None:
            try:
                await closer(reason)
            except Exception:  # the transport may already be gone
                pass
        await asyncio.get_running_loop().run_in_executor(None, session.close)
        return True

    async def close_all(self) -> None:
        for sid in list(self.sessions):
            await self.close(sid, "server stopping")

    async def watch(self, period_s: float = 1.0) -> None:
        """Close sessions that went silent (no camera frame or message) or whose stream stopped."""
        while True:
            await asyncio.sleep(period_s)
            now = time.monotonic()
            for sid, s in list(self.sessions.items()):
                if now - s.last_activity > self.idle_timeout_s:
                    await self.close(sid, "timeout")
                elif not s.running and s.error:
                    await self.close(sid, "error")
