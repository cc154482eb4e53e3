"""DDIM schedule and context windows as upstream configures them (networks.md (d))."""
import numpy as np
import pytest
import torch

from engine.sampling.context import context_windows
from engine.sampling.schedulers.ddim import DDIMSchedule


def test_trailing_timesteps_for_20_steps():
    ts = DDIMSchedule().timesteps(20)
    assert ts[0] == 999 and ts[-1] == 49 and len(ts) == 20
    assert all(a - b == 50 for a, b in zip(ts, ts[1:]))


def test_zero_terminal_snr():
    s = DDIMSchedule()
    assert s.alphas_cumprod[-1] == 0.0
    assert s.alphas_cumprod[0] == pytest.approx(1 - 0.00085, rel=1e-6)


def test_schedule_and_step_match_diffusers_ddim():
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                  beta_schedule="linear", steps_offset=1, clip_sample=False,
                                  set_alpha_to_one=True, rescale_betas_zero_snr=True,
                                  timestep_spacing="trailing", prediction_type="v_prediction")
    ours = DDIMSchedule()
    # Ours is computed in float64 and stored in float32; diffusers computes in float32.
    assert np.allclose(ours.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=0, atol=1e-6)
    for n in (1, 3, 4, 20):
        ref.set_timesteps(n)
        assert ref.timesteps.tolist() == ours.timesteps(n)
        g = torch.Generator().manual_seed(n)
        x = torch.randn(1, 4, 3, 8, 8, generator=g)
        for t in ours.timesteps(n):
            v = torch.randn(x.shape, generator=g)
            expected = ref.step(v, t, x, eta=0.0).prev_sample
            got = ours.step(v, t, x, ours.previous_timestep(t, n))
            assert torch.allclose(got, expected, atol=1e-6, rtol=1e-5), (n, t)
            x = expected


def test_per_frame_step_equals_scalar_steps():
    s = DDIMSchedule()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 3, 8, 8, generator=g)
    v = torch.randn(x.shape, generator=g)
    t = torch.tensor([999, 666, 333])
    prev = t - 333
    joint = s.step(v, t, x, prev)
    for f in range(3):
        alone = s.step(v[:, :, f:f + 1], int(t[f]), x[:, :, f:f + 1], int(prev[f]))
        assert torch.allclose(joint[:, :, f:f + 1], alone, atol=1e-7)


def test_previous_timestep_uses_diffusers_rule():
    s = DDIMSchedule()
    assert s.timesteps(3) == [999, 666, 332]
    assert s.previous_timestep(666, 3) == 333  # not the next scheduled 332


@pytest.mark.parametrize("frames,expected", [
    (8, [[0, 1, 2, 3, 4, 5, 6, 7]]),
    (12, [list(range(12))]),
    (13, [list(range(12)), [11, 12] + list(range(10))]),
])
def test_context_windows_default(frames, expected):
    assert context_windows(frames) == expected


def test_context_windows_wrap_around_like_upstream():
    w = context_windows(100)
    assert len(w) == 10
    assert w[-1] == [99] + list(range(11))
    assert context_windows(8, size=4, overlap=1) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 0, 1]]
    counts = [sum(f in win for win in context_windows(100)) for f in range(100)]
    assert min(counts) >= 1


def test_context_windows_reject_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        context_windows(10, size=4, overlap=4)


def test_numpy_and_torch_steps_agree():
    """One schedule serves the torch samplers and the torch-free runtime."""
    s = DDIMSchedule()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 3, 8, 8), dtype=np.float32)
    v = rng.standard_normal((1, 4, 3, 8, 8), dtype=np.float32)
    t, prev = np.array([999, 499, 49]), np.array([749, 249, -201])
    out_np = s.step(v, t, x, prev)
    out_torch = s.step(torch.from_numpy(v), torch.from_numpy(t), torch.from_numpy(x), torch.from_numpy(prev))
    assert out_np.dtype == np.float32 and out_torch.dtype == torch.float32
    assert np.allclose(out_np, out_torch.numpy(), rtol=0, atol=1e-6)  # pow rounding differs by ~1 ulp
