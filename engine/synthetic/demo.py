"""The demo's synthetic person: a held-out identity driven by the built-in demo motion.

The portrait is the identity's reference render (detailed texture, hair or cap, background); the
driving FLAME parameters carry the identity's shape and light with the demo motion's pose, jaw and
expression (source shape + driving motion, as upstream mixes them); the head model renders the
guidance with the identity's low-detail albedo, as a FLAME texture fit would.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.flame.model import FlameModel
from engine.flame.params import FlameParams
from engine.synthetic.appearance import base_head, make_identity
from engine.synthetic.clips import render_portrait
from engine.synthetic.dataset import HELDOUT_SEED_BASE
from engine.synthetic.motion import Motion, demo_motion, reference_pose

DEMO_IDENTITY = HELDOUT_SEED_BASE + 2  # a held-out person: never seen in training


@dataclasses.dataclass(frozen=True)
class DemoPerson:
    portrait: np.ndarray  # (S,S,3) uint8
    params: FlameParams
    head: FlameModel
    description: str


def demo_person(frames: int, identity_seed: int = DEMO_IDENTITY, portrait_size: int = 256) -> DemoPerson:
    identity = make_identity(identity_seed)
    model, _, _ = base_head()
    ref = reference_pose(np.random.default_rng([5, identity_seed]))
    portrait, _ = render_portrait(identity, ref, portrait_size)
    motion: Motion = demo_motion(frames)
    params = FlameParams(shape=identity.shape, tex=np.zeros(50, np.float32), light=identity.light,
                         cam=motion.cam[0], crop=motion.crop, exp=motion.exp, pose=motion.pose,
                         valid=np.ones(frames, bool), model=model.name)
    head = dataclasses.replace(model, albedo=identity.plain_albedo)
    return DemoPerson(portrait[0], params, head, identity.description)
