"""Reference K/V shared between sessions, keyed by the portrait's pixels: computed once while any
session uses it, freed when the last one leaves (pinned entries, like the built-in portrait, stay)."""
from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable

import numpy as np


def image_key(image_rgb_u8: np.ndarray) -> str:
    digest = hashlib.sha1(np.ascontiguousarray(image_rgb_u8).tobytes()).hexdigest()
    return f"{digest}-{'x'.join(map(str, image_rgb_u8.shape))}"


class IdentityCache:
    def __init__(self, encode: Callable[[np.ndarray], Any]):
        self._encode = encode  # portrait -> identity handle (backend.encode_reference at the stream size)
        self._lock = threading.Lock()
        self._entries: dict[str, list] = {}  # key -> [handle, users, pinned]
        self._computing: dict[str, threading.Lock] = {}

    def acquire(self, image_rgb_u8: np.ndarray, pin: bool = False) -> tuple[str, Any]:
        """(key, identity handle); computed outside the cache lock, once per key even when raced."""
        key = image_key(image_rgb_u8)
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                entry = self._entries.get(key)
            if entry is None:
                entry = [self._encode(image_rgb_u8), 0, False]
            with self._lock:
                entry = self._entries.setdefault(key, entry)
                entry[1] += 1
                entry[2] = entry[2] or pin
                self._computing.pop(key, None)
        return key, entry[0]

    def release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0 and not entry[2]:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def users(self) -> dict[str, int]:
        with self._lock:
            return {k: e[1] for k, e in self._entries.items()}
