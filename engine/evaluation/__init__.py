"""Measuring generated frames against known ground truth: image metrics (metrics.py), the answers
a model must beat (controls.py), the issue-11 done-criteria (criteria.py) and one run of the
streaming runtime collected in memory (runs.py). Used by benchmarks/bench_quality.py and its test."""
