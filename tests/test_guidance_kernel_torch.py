"""The torch adapter of the CUDA guidance kernel: argument checks (CPU) and GPU agreement with the
host build (skips without a CUDA torch and GPU)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.errors import InputError  # noqa: E402
from helpers.kernel_demo_scene import make_demo_scene  # noqa: E402
from engine.guidance.kernel_torch import render_guidance_torch  # noqa: E402

FIELDS = ("verts_ndc", "vert_normals", "vert_depth", "faces", "uv_faces", "uvs", "albedo", "sh_light")


def _tensors(scene, device):
    return {k: torch.from_numpy(getattr(scene, k)).to(device) for k in FIELDS}


def test_cpu_tensors_are_rejected_with_the_field_name():
    scene = make_demo_scene(batch=1, height=16, width=16)
    fake_kernel = SimpleNamespace(ordinal=0)  # the check runs before anything touches the GPU
    with pytest.raises(InputError, match="verts_ndc must be a 3-D float32 tensor on cuda:0"):
        render_guidance_torch(fake_kernel, _tensors(scene, "cpu"), 16, 16)
    missing = _tensors(scene, "cpu")
    del missing["albedo"]
    with pytest.raises(InputError, match="'albedo' missing"):
        render_guidance_torch(fake_kernel, missing, 16, 16)


def test_torch_adapter_matches_host_build_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here (CPU build or no GPU)")
    from engine.guidance.kernel_cuda import CudaGuidanceKernel
    from engine.guidance.kernel_host import render_guidance_host

    scene = make_demo_scene(batch=2, height=96, width=96, seed=4)
    kernel = CudaGuidanceKernel.load()
    try:
        out = render_guidance_torch(kernel, _tensors(scene, "cuda"), 96, 96)
        torch.cuda.synchronize()
    finally:
        kernel.close()
    host = render_guidance_host(scene)  # same default spec: quantised, float32, depth x3
    for name in ("depth", "normal", "render", "alpha"):
        got = out[name].cpu().numpy()
        assert np.abs(got - getattr(host, name)).max() <= 1.0 / 255, name
