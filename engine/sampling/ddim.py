"""Old import path of the DDIM schedule (now engine/sampling/schedulers/ddim.py), kept for callers."""
from engine.sampling.schedulers.ddim import DDIMConfig, DDIMSchedule  # noqa: F401
