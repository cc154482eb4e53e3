"""Reading a live source on a thread, keeping only the newest item (bounded latency under load)."""
from __future__ import annotations

import threading
from typing import Any, Iterator

_END = object()


class LatestOnly:
    """Runs `items` on a daemon thread; `get()` returns the newest unread item, dropping older ones.

    An exception raised by the producer is re-raised by `get()` after the items before it; the end
    of the producer ends iteration. `dropped` counts items that were replaced before being read."""

    def __init__(self, items: Iterator[Any], name: str = "mprt-live-source"):
        self._items = items
        self._cond = threading.Condition()
        self._slot: Any = None
        self._has = False
        self._end: Any = None  # _END or an exception once the producer stopped
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set():
                    break
                with self._cond:
                    self.dropped += int(self._has)
                    self._slot, self._has = item, True
                    self._cond.notify()
            end: Any = _END
        except BaseException as err:  # handed to the consumer
            end = err
        with self._cond:
            self._end = end
            self._cond.notify()

    def depth(self) -> int:
        return int(self._has)

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        with self._cond:
            while not self._has and self._end is None:
                self._cond.wait(0.1)
            if self._has:
                self._has = False
                item, self._slot = self._slot, None
                return item
            if self._end is _END:
                raise StopIteration
            raise self._end

    def close(self) -> None:
        self._stop.set()
