"""Noise schedulers, one module each; a scheduler's name is its module's name ("ddim").

Adding one is adding one file here that defines `SCHEDULER`: a class, constructed without
arguments, with the three methods the samplers call (numpy arrays in, per-frame timesteps allowed):

    timesteps(num_steps) -> list[int]                 the noise levels visited, noisiest first
    previous_timestep(t, num_steps)                   where a step from t lands (t < 0: clean)
    step(v, t, x, t_prev)                             one update of latents x (B,C,F,h,w) from the
                                                      network's v-prediction at t, to t_prev

Modules are imported only when their scheduler is asked for.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol, Sequence

DEFAULT = "ddim"


class Scheduler(Protocol):
    def timesteps(self, num_steps: int) -> Sequence[int]: ...

    def previous_timestep(self, t, num_steps: int): ...

    def step(self, v, t, x, t_prev): ...


def scheduler_names() -> tuple[str, ...]:
    """Every scheduler module here, by name (nothing imported)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def make_scheduler(name: str = DEFAULT) -> Scheduler:
    from engine.errors import InputError
    if name not in scheduler_names():
        raise InputError(f"scheduler {name!r}: expected one of {', '.join(scheduler_names())}")
    return importlib.import_module(f"{__name__}.{name}").SCHEDULER()
