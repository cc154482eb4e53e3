"""Preset data: quality is upstream's offline configuration; overrides and their validation."""
import pytest

from engine.errors import InputError
from engine.runtime.presets import PRESETS, StreamSettings, preset_settings
from engine.sampling.offline import OfflineSettings


def test_quality_is_upstreams_offline_configuration():
    q, off = PRESETS["quality"].settings, OfflineSettings()
    assert (q.mode, q.steps, q.guidance_scale, q.window, q.overlap, q.cfg_steps) == \
        ("clip", off.steps, off.guidance_scale, off.window, off.overlap, None)
    assert [q.uses_cfg(i) for i in range(q.steps)] == [True] * 20


def test_streaming_presets_are_causal_and_cheaper():
    for name in ("balanced", "realtime"):
        s = preset_settings(name)
        assert s.is_causal and s.steps < 20 and s.window <= 32
    rt = preset_settings("realtime")
    assert rt.window == rt.steps * rt.frames_per_stage and not any(rt.uses_cfg(i) for i in range(rt.steps))
    b = preset_settings("balanced")
    assert [b.uses_cfg(i) for i in range(b.steps)] == [True, True] + [False] * (b.steps - 2)


def test_overrides_and_validation():
    assert preset_settings("realtime", steps=5, frames_per_stage=3).window == 15
    assert preset_settings("quality", guidance_scale=1.0).uses_cfg(0) is False
    for kwargs, needle in [(dict(steps=21), "steps"), (dict(steps=0), "steps"), (dict(window=33), "window"),
                           (dict(overlap=12), "overlap"), (dict(cfg_steps=-2), "cfg_steps")]:
        with pytest.raises(InputError, match=needle):
            preset_settings("balanced", **kwargs)
    with pytest.raises(InputError, match="frames_per_stage"):
        preset_settings("realtime", steps=8, frames_per_stage=5)
    with pytest.raises(InputError, match="unknown preset"):
        preset_settings("fastest")
    with pytest.raises(InputError, match="mode"):
        StreamSettings(mode="fifo").validate()
