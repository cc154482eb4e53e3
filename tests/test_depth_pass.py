"""Depth has its own visibility pass (guidance_maps.md §7): upstream rasterises depth at z_t - min + 10
and normal / render at + 20; with pytorch3d's +1e-8 on the barycentric area, tiny triangles' z depends
on the offset, so a few depth pixels of a posed head pick another face. Reference renderer and the
kernel's host build both do it, sharing everything but the z-test."""
import dataclasses

import numpy as np
import pytest

from engine.guidance.kernel_build import find_cxx_compiler
from engine.guidance.reference_renderer import render_reference


def q(x):
    return np.floor(np.clip(x * 255 + 0.5, 0, 255))


@pytest.fixture(scope="module")
def posed_head(shared_dir):
    from engine.guidance.pipeline import build_raster_inputs, default_albedo, demo_flame_params, synthetic_head
    obj = shared_dir / "assets" / "deca" / "head_template.obj"
    if not obj.is_file():
        pytest.skip(f"{obj} not present")
    head = synthetic_head(obj)  # FLAME topology (9976 faces), posed by the demo motion, 512x512
    return build_raster_inputs(demo_flame_params(12), head, default_albedo(head), 3, 4)


def single_pass_at(scene, z):
    """The scene rendered in one pass with the vertices' z replaced: what each pass alone gives."""
    verts = scene.verts_ndc.copy()
    verts[..., 2] = z
    return dataclasses.replace(scene, verts_ndc=verts, depth_z=None)


def test_pipeline_inputs_carry_the_depth_pass_z(posed_head):
    z20, z10 = posed_head.verts_ndc[..., 2], posed_head.depth_z
    assert z10.shape == z20.shape and np.allclose(z20 - z10, 10, atol=1e-5)
    assert np.array_equal(z20, (z10 + np.float32(10)).astype(np.float32))  # +10 then +10, as upstream


def test_reference_depth_comes_from_its_own_pass(posed_head):
    two = render_reference(posed_head)
    one = render_reference(dataclasses.replace(posed_head, depth_z=None))
    depth_alone = render_reference(single_pass_at(posed_head, posed_head.depth_z))
    assert np.array_equal(two.depth, depth_alone.depth)  # depth: the +10 pass
    assert np.array_equal(two.normal, one.normal) and np.array_equal(two.render, one.render)  # others: +20
    assert np.array_equal(two.pix_to_face, one.pix_to_face)
    differ = q(two.depth) != q(one.depth)
    assert 0 < differ.sum() < 100  # a handful of pixels on tiny triangles' edges (spec: ~18 at 512^2)


def test_host_kernel_depth_pass_matches_the_reference(posed_head):
    if find_cxx_compiler() is None:
        pytest.skip("no C++ compiler (c++/g++/clang++) to build the kernel's host library")
    from engine.guidance.kernel_host import render_guidance_host
    ref = render_reference(posed_head)
    maps = render_guidance_host(posed_head, quantize=False, with_validation=True)
    assert np.array_equal(maps.pix_to_face, ref.pix_to_face)
    assert np.abs(q(maps.depth) - q(ref.depth)).max() <= 1
    one = render_guidance_host(dataclasses.replace(posed_head, depth_z=None), quantize=False)
    assert (q(maps.depth) != q(one.depth)).sum() > 0  # the kernel really runs the second pass
