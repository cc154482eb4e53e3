"""The streaming runtime's sampling modes, in one table: mode name -> sampler class.

A sampler class carries what the runtime and the settings need to know of its mode (so neither
branches on mode names):
  causal           can run on an endless (live) source
  max_steps        the most scheduler steps the mode accepts
  reports_progress its `finish` reports progress through a `progress` callable (long offline runs)
  check(settings)  mode-specific validation (raises InputError)
  settle(settings) settings with the mode's derived fields filled in
  batch(settings)  frames a file source hands over per guidance-encode call
and is constructed as sampler(backend, identity, settings, noise[, progress=...]) with `push`,
`finish` and `in_flight`. A new mode is one sampler module plus one line here.
"""
from __future__ import annotations

from engine.runtime.clip_sampler import ClipSampler
from engine.runtime.stream_batch import StreamBatchSampler
from engine.runtime.window_sampler import WindowSampler

MODES = {"clip": ClipSampler, "windowed": WindowSampler, "stream_batch": StreamBatchSampler}
