"""Uploaded portraits: random ids, bounded count, short lifetime (an upload may start several sessions
of its page until it expires or newer uploads push it out)."""
from __future__ import annotations

import collections
import secrets
import threading
import time
from typing import Any


class PortraitStore:
    def __init__(self, max_entries: int = 16, ttl_s: float = 600.0):
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._lock = threading.Lock()
        self._items: collections.OrderedDict[str, tuple[float, Any, Any]] = collections.OrderedDict()

    def put(self, image, source_code) -> str:
        pid = secrets.token_urlsafe(18)
        with self._lock:
            self._expire()
            self._items[pid] = (time.monotonic(), image, source_code)
            while len(self._items) > self.max_entries:  # the oldest upload goes first
                self._items.popitem(last=False)
        return pid

    def get(self, pid: str):
        """(image, source_code) or None (unknown or expired)."""
        with self._lock:
            self._expire()
            item = self._items.get(pid)
        return None if item is None else item[1:]

    def _expire(self) -> None:
        now = time.monotonic()
        for pid in [p for p, (t, _, _) in self._items.items() if now - t > self.ttl_s]:
            del self._items[pid]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
