"""bench_load's table: the latency drift that shows a growing queue, and rows of modes a rerun
did not measure kept beside the new ones."""
from __future__ import annotations

import json

from benchmarks.bench_load import carried_over, latency_drift_ms


def test_latency_drift_is_zero_for_a_steady_stream_and_grows_with_a_queue():
    steady = [500.0 + (i % 3) for i in range(30)]
    queued = [500.0 + 100.0 * i for i in range(30)]  # each frame waits one frame longer
    assert abs(latency_drift_ms(steady)) <= 2
    assert latency_drift_ms(queued) == 2000.0  # medians of frames 20..29 and 0..9: 10 frames apart
    assert latency_drift_ms([1.0, 2.0, 3.0]) is None  # too few frames to tell


def test_a_rerun_keeps_the_rows_of_modes_it_did_not_measure(tmp_path):
    path = tmp_path / "load.json"
    rows = [{"mode": "ray2", "clients": 4, "aggregate_fps": 3.8},
            {"mode": "single", "clients": 4, "aggregate_fps": 0.8, "measured_at": "2026-11-29 18:00 UTC"}]
    path.write_text(json.dumps({"meta": {}, "rows": rows}))
    kept = carried_over(path, ["single", "single-seq"])
    assert kept == [{"measured_at": "earlier run", "mode": "ray2", "clients": 4, "aggregate_fps": 3.8}]
    assert carried_over(tmp_path / "missing.json", ["single"]) == []
