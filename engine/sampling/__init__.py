"""Samplers: DDIM schedule, context windows, upstream's offline sampling loop."""
