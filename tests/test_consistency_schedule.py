"""Consistency (LCM-style) multistep scheduler: boundary condition, exactness with a perfect x0
predictor, multistep self-consistency, per-frame timesteps, numpy == torch."""
from __future__ import annotations

import numpy as np
import pytest

from engine.sampling.schedulers.lcm import ConsistencySchedule, boundary_scalings
from engine.sampling.schedulers.ddim import DDIMSchedule


def perfect_v(schedule, x, t, x0):
    """The v that makes sqrt(ab) x - sqrt(1 - ab) v equal the true x0 (per frame for (F,) t)."""
    a = schedule._coefficient(t, x)
    return (a ** 0.5 * x - x0) / (1 - a) ** 0.5


def sample(schedule, steps, x0, noise, fresh=None):
    x = noise
    for k, t in enumerate(schedule.timesteps(steps)):
        v = perfect_v(schedule, x, t, x0)
        x = schedule.step(v, t, x, schedule.previous_timestep(t, steps), None if fresh is None else fresh[k])
    return x


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1, 4, 3, 8, 8)).astype(np.float32), rng.standard_normal((1, 4, 3, 8, 8)).astype(np.float32)


def test_boundary_condition():
    c_skip, c_out = boundary_scalings(np.array([0, -1, 999]))
    assert c_skip[0] == c_skip[1] == 1 and c_out[0] == c_out[1] == 0  # f(x, 0) = x
    assert c_skip[2] < 1e-8 and abs(c_out[2] - 1) < 1e-8
    s = ConsistencySchedule()
    x = np.ones((1, 4, 1, 2, 2), np.float32)
    assert np.array_equal(s.denoise(np.full_like(x, 7.0), 0, x), x)  # the prediction is ignored at t = 0


def test_same_schedule_as_the_teacher():
    s, d = ConsistencySchedule(), DDIMSchedule()
    assert s.timesteps(4) == [999, 749, 499, 249] and s.timesteps(1) == [999] and s.timesteps(2) == [999, 499]
    assert np.array_equal(s.alphas_cumprod, d.alphas_cumprod) and s.alpha_bar(999) == 0


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_perfect_x0_predictor_returns_x0_from_pure_noise(data, steps):
    x0, noise = data
    s = ConsistencySchedule()
    assert np.abs(sample(s, steps, x0, noise) - x0).max() < 1e-5
    fresh = np.random.default_rng(1).standard_normal((steps, *x0.shape)).astype(np.float32)
    assert np.abs(sample(s, steps, x0, noise, fresh) - x0).max() < 1e-5  # LCM's fresh-noise variant too


def test_deterministic_multistep_stays_on_the_trajectory_of_its_noise(data):
    """Without fresh noise, every intermediate latent is x0 noised with the *initial* noise to that level:
    the teacher's probability-flow path, so steps compose (multistep consistency)."""
    x0, noise = data
    s = ConsistencySchedule()
    x, steps = noise, 4
    for t in s.timesteps(steps):
        t_prev = s.previous_timestep(t, steps)
        x = s.step(perfect_v(s, x, t, x0), t, x, t_prev)
        a = s.alpha_bar(t_prev)
        assert np.abs(x - (a ** 0.5 * x0 + (1 - a) ** 0.5 * noise)).max() < 1e-4, t_prev
    # A wrong predictor does not return x0: the test can fail.
    bad = s.step(perfect_v(s, noise, 999, x0) + 0.1, 999, noise, -1)
    assert np.abs(bad - x0).max() > 0.05


def test_per_frame_timesteps_equal_per_frame_calls_and_torch_equals_numpy(data):
    torch = pytest.importorskip("torch")
    x0, noise = data
    s = ConsistencySchedule()
    t, t_prev = np.array([999, 749, 249]), np.array([749, 499, -1])
    a = s.alpha_bar(t).reshape(1, 1, -1, 1, 1)
    x = (a ** 0.5 * x0 + (1 - a) ** 0.5 * noise).astype(np.float32)
    v = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    both = s.step(v, t, x, t_prev)
    for f in range(3):
        one = s.step(v[:, :, f:f + 1], int(t[f]), x[:, :, f:f + 1], int(t_prev[f]))
        assert np.abs(both[:, :, f:f + 1] - one).max() < 1e-5
    via_torch = s.step(torch.from_numpy(v), torch.from_numpy(t), torch.from_numpy(x), torch.from_numpy(t_prev))
    assert np.abs(via_torch.numpy() - both).max() < 1e-5


def test_registered_as_the_lcm_scheduler():
    from engine.sampling.schedulers import make_scheduler, scheduler_names
    assert "lcm" in scheduler_names() and isinstance(make_scheduler("lcm"), ConsistencySchedule)
