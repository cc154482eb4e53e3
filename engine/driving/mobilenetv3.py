"""timm's `tf_mobilenetv3_large_minimal_100` feature trunk (features_only, last map), re-written.

Why not timm itself: timm imports torchvision at package import (`timm.layers.create_norm`), and
PyPI's torchvision wheels do not load beside this project's torch 2.13.0 CPU build ("operator
torchvision::nms does not exist"); installing timm with its dependencies would also replace torch.
So the trunk is written here with timm's module/key names (`conv_stem`, `bn1`, `blocks.i.j.*`), and
`tests/test_driving_encoders.py` checks keys and outputs against real timm where it imports.

Architecture (timm `_gen_mobilenet_v3`, 'minimal' large): ReLU everywhere, no squeeze-excite,
3x3 depthwise kernels, TF "same" padding (asymmetric for stride 2) and BatchNorm eps 1e-3
(`tf_` variants). The output is the stride-32 960-channel map of the 1x1 conv stage.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS_TF = 1e-3

# (block type, repeats, kernel, stride, expansion ratio, out channels) per stage, from timm's arch_def:
# ds_r1_k3_s1_e1_c16 | ir_r1_k3_s2_e4_c24, ir_r1_k3_s1_e3_c24 | ir_r3_k3_s2_e3_c40 |
# ir_r1_k3_s2_e6_c80, ir_r1_k3_s1_e2.5_c80, ir_r2_k3_s1_e2.3_c80 | ir_r2_k3_s1_e6_c112 |
# ir_r3_k3_s2_e6_c160 | cn_r1_k1_s1_c960
LARGE_MINIMAL_STAGES = (
    (("ds", 1, 3, 1, 1.0, 16),),
    (("ir", 1, 3, 2, 4.0, 24), ("ir", 1, 3, 1, 3.0, 24)),
    (("ir", 3, 3, 2, 3.0, 40),),
    (("ir", 1, 3, 2, 6.0, 80), ("ir", 1, 3, 1, 2.5, 80), ("ir", 2, 3, 1, 2.3, 80)),
    (("ir", 2, 3, 1, 6.0, 112),),
    (("ir", 3, 3, 2, 6.0, 160),),
    (("cn", 1, 1, 1, 1.0, 960),),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """timm's channel rounding: nearest multiple of `divisor`, never more than 10% below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (extra pixel at the bottom/right when odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(int(size) / s) - 1) * s + k - int(size), 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


def bn(chs: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(chs, eps=BN_EPS_TF)


class DepthwiseSeparable(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, kernel: int, stride: int):
        super().__init__()
        self.conv_dw = SameConv2d(in_chs, in_chs, kernel, stride, groups=in_chs, bias=False)
        self.bn1 = bn(in_chs)
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn2 = bn(out_chs)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_pw(F.relu(self.bn1(self.conv_dw(x)))))  # no act after pw
        return out + x if self.has_skip else out


class InvertedResidual(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, kernel: int, stride: int, expansion: float):
        super().__init__()
        mid = make_divisible(in_chs * expansion)
        self.conv_pw = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.bn1 = bn(mid)
        self.conv_dw = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self.bn2 = bn(mid)
        self.conv_pwl = nn.Conv2d(mid, out_chs, 1, bias=False)
        self.bn3 = bn(out_chs)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv_pw(x)))
        out = F.relu(self.bn2(self.conv_dw(out)))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_skip else out


class ConvBnAct(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel, bias=False)
        self.bn1 = bn(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv(x)))


class MobileNetV3LargeMinimalFeatures(nn.Module):
    """Image (B,3,H,W) -> final feature map (B,960,H/32,W/32)."""

    def __init__(self, stages=LARGE_MINIMAL_STAGES, stem_chs: int = 16):
        super().__init__()
        self.conv_stem = SameConv2d(3, stem_chs, 3, 2, bias=False)
        self.bn1 = bn(stem_chs)
        in_chs = stem_chs
        self.blocks = nn.Sequential()
        for stage in stages:
            layers = []
            for kind, repeats, kernel, stride, expansion, out_chs in stage:
                for r in range(repeats):
                    s = stride if r == 0 else 1
                    if kind == "ds":
                        layers.append(DepthwiseSeparable(in_chs, out_chs, kernel, s))
                    elif kind == "ir":
                        layers.append(InvertedResidual(in_chs, out_chs, kernel, s, expansion))
                    else:
                        layers.append(ConvBnAct(in_chs, out_chs, kernel))
                    in_chs = out_chs
            self.blocks.append(nn.Sequential(*layers))
        self.out_features = in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.relu(self.bn1(self.conv_stem(x))))
