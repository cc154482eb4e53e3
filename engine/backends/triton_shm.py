"""The identity's reference K/V in system shared memory, for a Triton server on the same host.

Every UNet call needs the identity's K/V (~46 MB at 512 px fp16). Sent on the wire, they cross the
socket on every call; placed once in a shared-memory region that the server has registered
(Triton's system shared memory extension), each call only names the region and offsets. The region
lives as long as the identity handle: released (unregistered, unlinked) when the handle is collected
or the backend closes.
"""
from __future__ import annotations

import itertools
import os
import weakref
from typing import Callable, Mapping

import numpy as np

_counter = itertools.count()


class SharedIdentity(dict):
    """The identity's arrays (name -> array), plus where each lies: name -> (region, offset, byte_size),
    and `release()`, which frees the region (at most once; also when the handle is collected)."""

    regions: dict[str, tuple[str, int, int]]
    release: weakref.finalize


def is_loopback(address: str) -> bool:
    """`host:port` on this machine (where a server can map our /dev/shm)."""
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    return host in ("localhost", "::1") or host.startswith("127.")


def share_identity(identity: Mapping[str, np.ndarray], register: Callable[[str, str, int], None],
                   unregister: Callable[[str], None]) -> SharedIdentity:
    """Copy the arrays into one new region, have the server register it (`register(name, key, bytes)`),
    and return the identity that names it. Raises what `register` raises, the region already gone."""
    from tritonclient.utils import shared_memory as shm
    total = sum(a.nbytes for a in identity.values())
    name = f"mprt_identity_{os.getpid()}_{next(_counter)}"
    handle = shm.create_shared_memory_region(name, "/" + name, total, create_only=True)
    try:
        out, offset = SharedIdentity(identity), 0
        out.regions = {}
        for key, arr in identity.items():
            shm.set_shared_memory_region(handle, [np.ascontiguousarray(arr)], offset=offset)
            out.regions[key] = (name, offset, arr.nbytes)
            offset += arr.nbytes
        register(name, "/" + name, total)
    except BaseException:
        shm.destroy_shared_memory_region(handle)
        raise
    out.release = weakref.finalize(out, _release, unregister, name, handle)
    return out


def _release(unregister, name: str, handle) -> None:
    from tritonclient.utils import shared_memory as shm
    try:
        unregister(name)
    except Exception:  # the server may be gone already; the memory is ours to free regardless
        pass
    shm.destroy_shared_memory_region(handle)
