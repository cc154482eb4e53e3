"""The newest camera frame of a session: the network side puts, the tracking side takes; a frame
not taken before the next one arrives is dropped (counted), so no queue builds up when behind."""
from __future__ import annotations

import threading
from typing import Any


class NewestFrame:
    def __init__(self):
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            self.received += 1
            self.dropped += int(self._item is not None)
            self._item = item
            self._cond.notify()

    def take(self, wake=lambda: False) -> Any:
        """The newest item, waiting for one; None once closed or when `wake()` turns true."""
        with self._cond:
            while self._item is None and not self._closed and not wake():
                self._cond.wait(0.1)
            item, self._item = self._item, None
            return None if self._closed or wake() else item

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed, self._item = True, None
            self._cond.notify_all()


def stop_consumer(inbox: NewestFrame, thread: threading.Thread, timeout: float) -> None:
    """Close `inbox` (its consumer's take() returns None) and wait up to `timeout` for `thread`."""
    inbox.close()
    if thread.ident is not None:  # never started: nothing to wait for
        thread.join(timeout)
