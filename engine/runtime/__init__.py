"""Streaming runtime: guidance frames in, video frames out, continuously (see runner.py)."""
