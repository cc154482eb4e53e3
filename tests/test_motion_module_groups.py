"""Motion modules normalise with 32 groups whatever the UNet's norm_num_groups (networks.md: upstream's
get_motion_module passes no group count, so TemporalTransformer3DModel keeps its default of 32).
Checked on a UNet config with norm_num_groups = 16, where 16 groups would give different numbers."""
import torch
import torch.nn.functional as F

from engine.networks.config import MotionModuleConfig, UNetConfig
from engine.networks.denoising_unet import DenoisingUNet3D


def test_motion_modules_use_32_groups_with_norm_num_groups_16():
    torch.manual_seed(0)
    cfg = UNetConfig(block_out_channels=(32, 32, 64, 64), cross_attention_dim=16, norm_num_groups=16)
    net = DenoisingUNet3D(cfg, MotionModuleConfig()).eval()
    motion = [m for name, m in net.named_modules() if name.endswith("temporal_transformer")]
    resnet_norms = [m for name, m in net.named_modules() if name.endswith("resnets.0.norm1")]
    assert motion and all(m.norm.num_groups == 32 for m in motion)
    assert resnet_norms and all(n.num_groups == 16 for n in resnet_norms)  # the UNet's own norms keep 16

    # Parity of one module against upstream's formula written out here: GN(32, eps 1e-6) per frame,
    # proj_in, the temporal blocks, proj_out, residual.
    tt = motion[-1]
    with torch.no_grad():
        for p in tt.norm.parameters():
            p.normal_()
        frames, c = 4, tt.norm.num_channels
        x = torch.randn(frames, c, 3, 5)
        normed = F.group_norm(x, 32, tt.norm.weight, tt.norm.bias, eps=1e-6)
        z = tt.proj_in(normed.permute(0, 2, 3, 1).reshape(frames, 15, c))
        for block in tt.transformer_blocks:
            z = block(z, frames)
        expected = tt.proj_out(z).reshape(frames, 3, 5, c).permute(0, 3, 1, 2) + x
        assert torch.allclose(tt(x, frames), expected, atol=1e-6)
        with_16 = F.group_norm(x, 16, tt.norm.weight, tt.norm.bias, eps=1e-6)
        assert (with_16 - normed).abs().max() > 1e-2  # the group count is visible in the output
