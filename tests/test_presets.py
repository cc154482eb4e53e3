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


def test_a_backend_runs_its_models_cfg_scale_unless_given_one():
    """The teacher at the scale its model declares (BackendInfo.guidance_scale); a given scale wins; a
    student samples with its own scheduler and no CFG whatever the scale."""
    from engine.backends.base import BackendInfo
    from engine.runtime.presets import settings_for_backend
    own = BackendInfo(name="torch", device="cpu", precision="float32", guidance_scale=1.5)
    assert settings_for_backend(preset_settings("quality"), own).guidance_scale == 1.5
    assert settings_for_backend(preset_settings("balanced"), own).guidance_scale == 1.5
    given = preset_settings("quality", guidance_scale=3.5)
    assert settings_for_backend(given, own, scale_given=True).guidance_scale == 3.5
    upstream = BackendInfo(name="torch", device="cpu", precision="float32")
    assert settings_for_backend(preset_settings("quality"), upstream) == preset_settings("quality")
    student = BackendInfo(name="torch", device="cpu", precision="float32", denoiser="student (4 steps)")
    s = settings_for_backend(preset_settings("realtime"), student)
    assert s.scheduler == "lcm" and not any(s.uses_cfg(i) for i in range(s.steps))


def test_model_config_reads_and_checks_the_declared_cfg_scale(tmp_path):
    import json

    from engine.networks.config import ModelConfig, UNetConfig
    from engine.weights.guidance_scale import model_guidance_scale
    unet = UNetConfig()
    assert ModelConfig.from_json({}, unet, "m.json").guidance_scale == 3.5  # upstream's, when undeclared
    assert ModelConfig.from_json({"guidance_scale": 2}, unet, "m.json").guidance_scale == 2.0
    for bad in (0.5, "2", True, 100):
        with pytest.raises(InputError, match="m.json: guidance_scale"):
            ModelConfig.from_json({"guidance_scale": bad}, unet, "m.json")
    assert model_guidance_scale(tmp_path) == 3.5  # torch-free reader, as the graph / Triton clients use it
    (tmp_path / "MagicPortrait").mkdir()
    (tmp_path / "MagicPortrait" / "magicportrait.json").write_text(json.dumps({"guidance_scale": 1.5}))
    assert model_guidance_scale(tmp_path) == 1.5
