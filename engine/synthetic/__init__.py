"""Synthetic people: identities, motions and rendered clips with known ground truth.

The data the project's own small MagicPortrait model is trained and measured on (`mprt train`,
benchmarks/bench_quality.py). An identity carries what the guidance maps cannot show (a detailed
skin texture, hair or a cap, a background); a motion carries what a reference image cannot
(pose, jaw, expression, the head's place in the frame). Everything is deterministic from seeds.
"""
from engine.synthetic.appearance import Identity, make_identity
from engine.synthetic.motion import Motion, make_motion
from engine.synthetic.clips import Clip, render_clip

__all__ = ["Identity", "make_identity", "Motion", "make_motion", "Clip", "render_clip"]
