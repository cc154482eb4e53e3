"""Errors of the guidance-map kernel's build and launch, worded for the user."""
from __future__ import annotations

from engine.errors import MprtError


class KernelBuildError(MprtError):
    """The kernel source could not be compiled (no C++ compiler, no NVRTC, or a compile error)."""


class CudaUnavailableError(MprtError):
    """No usable CUDA driver or GPU for the CUDA guidance kernel."""
