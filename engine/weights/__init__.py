"""Locating and loading checkpoints in upstream's on-disk layout."""
