"""What the three sampling modes share: construction (backend, identity, settings, noise and the
settings' scheduler) and the defaults of the per-mode facts engine/runtime/modes.py lists."""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.backends.base import Backend
from engine.sampling.schedulers import make_scheduler


class Sampler:
    causal = True          # can run on an endless (live) source
    max_steps = 20         # scheduler steps accepted
    reports_progress = False

    def __init__(self, backend: Backend, identity: Any, settings, noise):
        self.backend, self.identity, self.settings, self.noise = backend, identity, settings, noise
        self.schedule = make_scheduler(settings.scheduler)

    @classmethod
    def check(cls, settings) -> None:
        """Mode-specific validation (raises InputError)."""

    @classmethod
    def settle(cls, settings):
        """The settings with this mode's derived fields filled in."""
        return settings

    @classmethod
    def batch(cls, settings) -> int:
        """Frames a file source hands over per guidance-encode call."""
        return settings.stride

    def in_flight(self) -> int:
        raise NotImplementedError

    def push(self, seq: int, feature: Any) -> list[tuple[int, np.ndarray]]:
        """Frame `seq`'s guidance feature in; the (seq, latent) pairs that became final out."""
        raise NotImplementedError

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """End of input: every remaining frame, final."""
        raise NotImplementedError
