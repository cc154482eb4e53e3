"""Benchmarks: speed measurements written as JSON + Markdown tables to benchmarks/results/."""
