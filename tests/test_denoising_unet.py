"""Denoising UNet3D behaviours the runtime relies on."""
import pytest
import torch

from engine.errors import InputError

pytestmark = pytest.mark.slow  # the tiny 3D UNet, called frame by frame (~40-60 CPU-s a test)


@pytest.fixture(scope="module")
def inputs(tiny_model):
    g = torch.Generator().manual_seed(0)
    m = tiny_model
    c0 = m.config.unet.block_out_channels[0]
    return dict(
        x=torch.randn(2, 4, 5, 16, 16, generator=g),
        guidance=torch.randn(1, c0, 5, 16, 16, generator=g),
        kv=m.reference_kv(torch.randn(1, 4, 16, 16, generator=g)),
    )


@torch.no_grad()
def test_uniform_per_frame_timesteps_equal_the_scalar_call(tiny_model, inputs):
    unet, text = tiny_model.denoising_unet, tiny_model.text_embedding
    x, g, kv = inputs["x"][:1], inputs["guidance"], inputs["kv"]
    for t in (999, 500, 49):
        assert torch.allclose(unet(x, torch.full((1, 5), t), text, g, kv), unet(x, torch.tensor(t), text, g, kv),
                              atol=1e-6)


@torch.no_grad()
def test_staggered_timesteps_equal_scalar_calls_per_frame(tiny_model, inputs):
    """With the motion modules made identity (zero proj_out, as in a fresh AnimateDiff module) frames
    do not interact, so frame f of one staggered call must equal a scalar-timestep call at t_f."""
    import copy
    unet = copy.deepcopy(tiny_model.denoising_unet)
    for name, p in unet.named_parameters():
        if "temporal_transformer.proj_out" in name:
            p.zero_()
    text, x, g, kv = tiny_model.text_embedding, inputs["x"][:1], inputs["guidance"], inputs["kv"]
    ts = torch.tensor([[999, 749, 499, 249, 49]])
    joint = unet(x, ts, text, g, kv)
    for f, t in enumerate(ts[0].tolist()):
        alone = unet(x[:, :, f:f + 1], torch.tensor(t), text, g[:, :, f:f + 1], kv)
        assert torch.allclose(joint[:, :, f:f + 1], alone, atol=1e-5), f
    # And the real (mixing) network does depend on the other frames' timesteps.
    real = tiny_model.denoising_unet
    assert not torch.allclose(real(x, ts, text, g, kv), real(x, torch.tensor(999), text, g, kv), atol=1e-3)


@torch.no_grad()
def test_per_frame_timesteps_match_a_manual_per_frame_embedding(tiny_model, inputs):
    """Each frame's resnets see its own time embedding: frame f of a staggered call equals frame f of a
    call where every frame has t_f, when frames do not interact (F = 1 windows)."""
    unet, text = tiny_model.denoising_unet, tiny_model.text_embedding
    x, g, kv = inputs["x"][:1], inputs["guidance"], inputs["kv"]
    ts = [999, 499, 49]
    for f, t in enumerate(ts):
        alone = unet(x[:, :, f:f + 1], torch.tensor(t), text, g[:, :, f:f + 1], kv)
        batched = unet(x[:, :, f:f + 1].expand(1, -1, 1, -1, -1), torch.tensor([[t]]), text, g[:, :, f:f + 1], kv)
        assert torch.allclose(alone, batched, atol=1e-6)


@torch.no_grad()
def test_cfg_batch_halves(tiny_model, inputs):
    unet, text = tiny_model.denoising_unet, tiny_model.text_embedding
    x, g, kv = inputs["x"], inputs["guidance"], inputs["kv"]
    both = unet(x, torch.tensor(500), text, g, kv, torch.tensor([False, True]))
    cond = unet(x[1:], torch.tensor(500), text, g, kv)
    uncond = unet(x[:1], torch.tensor(500), text, g, None)
    assert torch.allclose(both[1:], cond, atol=1e-5)
    assert torch.allclose(both[:1], uncond, atol=1e-5)
    assert not torch.allclose(cond, unet(x[1:], torch.tensor(500), text, g, None), atol=1e-3)


def test_rejects_too_many_frames_and_bad_sizes(tiny_model):
    unet, text = tiny_model.denoising_unet, tiny_model.text_embedding
    with pytest.raises(InputError, match="33 frames exceed"):
        unet(torch.zeros(1, 4, 33, 8, 8), torch.tensor(1), text, None, None)
    with pytest.raises(InputError, match="multiple of 8"):
        unet(torch.zeros(1, 4, 2, 12, 12), torch.tensor(1), text, None, None)
    with pytest.raises(InputError, match="timestep"):
        unet(torch.zeros(1, 4, 2, 8, 8), torch.zeros(3, 3), text, None, None)


@torch.no_grad()
def test_fp16_networks_agree_with_fp32(tiny_model, inputs):
    """Half precision (the GPU path) runs end to end; agreement stated at 1e-2 relative."""
    import copy
    unet16 = copy.deepcopy(tiny_model.denoising_unet).half()
    ref16 = copy.deepcopy(tiny_model.reference_unet).half()
    text = tiny_model.text_embedding
    x, g = inputs["x"], inputs["guidance"]
    ref_latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    kv32 = tiny_model.denoising_unet.project_reference(tiny_model.reference_unet(ref_latents, text))
    kv16 = unet16.project_reference(ref16(ref_latents.half(), text.half()))
    use = torch.tensor([False, True])
    out32 = tiny_model.denoising_unet(x, torch.tensor(700), text, g, kv32, use)
    out16 = unet16(x.half(), torch.tensor(700), text.half(), g.half(), kv16, use)
    assert out16.dtype == torch.float16
    assert ((out16.float() - out32).abs().max() / out32.abs().max()).item() < 1e-2
