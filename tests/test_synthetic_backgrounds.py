"""Background variants of training clips (engine/synthetic/backgrounds.py): exact re-compositing,
the head untouched, frames and reference sharing the new background, deterministic."""
from __future__ import annotations

import numpy as np

from engine.synthetic import make_identity, make_motion, render_clip
from engine.synthetic.dataset import background
from engine.synthetic.motion import reference_pose
from engine.synthetic.backgrounds import recomposite, with_new_backgrounds


def _clip(size=32):
    return render_clip(make_identity(3), make_motion(5, 2), reference_pose(np.random.default_rng(1)), size)


def test_recompositing_over_the_same_background_gives_the_frame_back():
    clip = _clip()
    bg = background(clip.identity, 32)
    same = recomposite(clip.frames, clip.mask, bg, bg)
    np.testing.assert_array_equal(same, clip.frames)


def test_new_background_replaces_the_background_and_keeps_the_head():
    clip = _clip()
    out = with_new_backgrounds([clip], variants=2, seed=0)
    assert len(out) == 3 and out[0] is clip
    head, empty = clip.mask == 255, clip.mask == 0
    assert head.any() and empty.any()
    for variant in out[1:]:
        np.testing.assert_array_equal(variant.frames[head], clip.frames[head])
        assert np.abs(variant.frames[empty].astype(int) - clip.frames[empty]).mean() > 5
        for k in clip.maps:  # the guidance never sees the background
            np.testing.assert_array_equal(variant.maps[k], clip.maps[k])
        # the reference is over the same new background as the frames: both empty corners agree
        both = empty[0] & (clip.reference_mask == 0)
        np.testing.assert_allclose(variant.reference[both], variant.frames[0][both], atol=1)
    assert np.abs(out[1].frames.astype(int) - out[2].frames).max() > 0  # variants differ


def test_variants_are_deterministic():
    clip = _clip()
    a, b = with_new_backgrounds([clip], 1, seed=4), with_new_backgrounds([clip], 1, seed=4)
    np.testing.assert_array_equal(a[1].frames, b[1].frames)
    np.testing.assert_array_equal(a[1].reference, b[1].reference)
