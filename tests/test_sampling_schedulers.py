"""The scheduler registry: schedulers are the modules of engine/sampling/schedulers/, found by name;
a new one is one file there (checked by dropping a module into the package's search path), and the
settings' `scheduler` field reaches every sampler."""
import numpy as np
import pytest

from engine.errors import InputError
from engine.sampling.schedulers import make_scheduler, scheduler_names
from engine.sampling.schedulers.ddim import DDIMSchedule

ONE_FILE_SCHEDULER = '''
import numpy as np


class HalfStep:
    """x <- x - 0.5 v at each of num_steps evenly spaced timesteps: trivial to check by hand."""
    def timesteps(self, num_steps):
        return [999 - i * (1000 // num_steps) for i in range(num_steps)]

    def previous_timestep(self, t, num_steps):
        return t - 1000 // num_steps

    def step(self, v, t, x, t_prev):
        return x - 0.5 * v


SCHEDULER = HalfStep
'''


def test_ddim_is_registered_by_its_module_name():
    assert "ddim" in scheduler_names()
    assert isinstance(make_scheduler("ddim"), DDIMSchedule)
    with pytest.raises(InputError, match="scheduler 'nope': expected one of .*ddim"):
        make_scheduler("nope")


@pytest.fixture
def half_step(tmp_path, monkeypatch):
    from helpers.packages import drop_module
    return drop_module(monkeypatch, tmp_path, "engine.sampling.schedulers", "halfstep", ONE_FILE_SCHEDULER)


@pytest.mark.parametrize("preset", ["quality", "balanced", "realtime"])
def test_a_scheduler_in_one_file_reaches_every_mode(half_step, preset):
    from engine.runtime.modes import MODES
    from engine.runtime.noise import FrameNoise
    from engine.runtime.presets import preset_settings
    from helpers.runtime_fakes import FrameLocalBackend
    assert half_step in scheduler_names()
    settings = preset_settings(preset, scheduler=half_step, steps=2, cfg_steps=0)
    noise = FrameNoise(seed=1, shape=(4, 2, 2))
    backend = FrameLocalBackend()
    sampler = MODES[settings.mode](backend, 0.25, settings, noise)
    assert type(sampler.schedule).__name__ == "HalfStep"
    out = []
    for seq in range(3):
        out += sampler.push(seq, 0.1)
    out += sampler.finish()
    assert sorted(seq for seq, _ in out) == [0, 1, 2]
    # Frame-local backend: each frame's result is its own two half steps, whatever the mode's batching.
    for seq, latent in out:
        x = noise.frame(seq)[None, :, None]
        for t in (999, 499):
            v = backend.denoise(x, np.array([[t]]), [0.1], 0.25, np.array([True]))
            x = x - 0.5 * v
        np.testing.assert_allclose(latent, x[0, :, 0], atol=1e-5)


def test_unknown_scheduler_in_settings_is_named():
    from engine.runtime.presets import preset_settings
    with pytest.raises(InputError, match="scheduler"):
        preset_settings("balanced", scheduler="nope")
