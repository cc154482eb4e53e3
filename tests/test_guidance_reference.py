"""CPU reference renderer vs analytic scenes and a per-pixel loop (spec guidance_maps.md §4, §7)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from engine.guidance import reference_renderer as rr
from engine.guidance.quantize import maps_to_u8_frames, quantize_u8, u8_frames_to_pipeline
from engine.guidance.reference_renderer import SH_CONSTANTS, pixel_centres, render_reference
from engine.mesh import raster
from helpers.guidance_scenes import quad, scene, uv_sphere

F32 = np.float32


def centres64(size):
    return -(((2 * np.arange(size) + 1) / size) - 1)


def test_pixel_centres_follow_pytorch3d():
    assert np.array_equal(pixel_centres(512), centres64(512).astype(F32))
    assert pixel_centres(4).tolist() == [0.75, 0.25, -0.25, -0.75]  # col 0 is +x in p3d space


def test_plane_depth_is_the_plane_evaluated_at_pixel_centres():
    # a slanted quad; per-vertex depth linear in (x, y) => interpolated depth is exactly linear
    verts, faces = quad(-0.7, -0.6, 0.8, 0.5, 20.0)
    verts = np.array(verts)
    depth_fn = lambda x, y: 0.3 + 0.2 * x - 0.1 * y  # noqa: E731
    maps = render_reference(scene(verts, faces, depth=depth_fn(verts[:, 0], verts[:, 1]), size=64))
    xs, ys = np.meshgrid(centres64(64), centres64(64))
    inside = (xs > -0.7) & (xs < 0.8) & (ys > -0.6) & (ys < 0.5)
    diag = np.abs((ys + 0.6) * 1.5 - (xs + 0.7) * 1.1) < 1e-9  # shared edge: covered by neither
    assert np.array_equal(maps.alpha[0, 0] > 0, inside & ~diag)
    err = np.abs(maps.depth[0, 0] - depth_fn(xs, ys))[inside & ~diag]
    assert err.max() < 1e-6
    assert np.all(maps.depth[0, 0][~inside] == 0) and np.all(maps.pix_to_face[0][~inside] == -1)


def test_sphere_normals_match_the_analytic_sphere():
    verts, faces, unit = uv_sphere()
    maps = render_reference(scene(verts, faces, normals=unit, size=96))
    xs, ys = np.meshgrid(centres64(96), centres64(96))
    r2 = (xs**2 + ys**2) / 0.8**2
    core = r2 < 0.9**2
    expect = np.stack([xs / 0.8, ys / 0.8, np.sqrt(np.clip(1 - r2, 0, None))])
    err = np.abs(maps.normal[0] - expect)[:, core]
    print(f"sphere normals: max |err| {err.max():.4f} over {core.sum()} px")
    assert err.max() < 0.02  # tessellation error of a 48x96 sphere, not float error
    assert np.all(maps.alpha[0, 0][core] == 1)
    assert np.all(maps.normal[0][:, r2 > 1.05] == 0)


@pytest.mark.parametrize("normal", [(0, 0, 1), (0.6, 0, 0.8), (-0.36, 0.48, 0.8)])
def test_sh_shading_of_a_known_normal(normal):
    n = np.array(normal, np.float64)
    rng = np.random.default_rng(0)
    light = rng.normal(0, 0.5, (9, 3))
    colour = np.array([0.9, 0.6, 0.3])
    albedo = np.broadcast_to(colour[:, None, None], (3, 256, 256)).astype(F32)
    verts, faces = quad(-0.5, -0.5, 0.5, 0.5, 20.0)
    uvs = np.array([[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]], F32)
    maps = render_reference(scene(verts, faces, normals=np.tile(n, (4, 1)), uvs=uvs, uv_faces=faces,
                                  albedo=albedo, light=light, size=32))
    basis = np.array([1, n[0], n[1], n[2], n[0] * n[1], n[0] * n[2], n[1] * n[2],
                      n[0] ** 2 - n[1] ** 2, 3 * n[2] ** 2 - 1]) * SH_CONSTANTS.astype(np.float64)
    expect = colour * (basis @ light)
    covered = maps.alpha[0, 0] > 0
    assert covered.sum() > 200
    assert np.abs(maps.render[0][:, covered] - expect[:, None]).max() < 1e-5


def test_sh_constants_are_the_closed_forms():
    pi = np.pi
    closed = [1 / np.sqrt(4 * pi), (2 * pi / 3) * np.sqrt(3 / (4 * pi)), (pi / 4) * 3 * np.sqrt(5 / (12 * pi)),
              (pi / 4) * 1.5 * np.sqrt(5 / (12 * pi)), (pi / 4) * 0.5 * np.sqrt(5 / (4 * pi))]
    got = SH_CONSTANTS[[0, 1, 4, 7, 8]]
    assert np.allclose(got, closed, atol=1e-7)


@pytest.mark.parametrize("chunk", [None, 7])
def test_z_fight_tie_goes_to_the_lowest_face_id(monkeypatch, chunk):
    if chunk is not None:  # force several chunks: the tie must survive the chunk merge
        monkeypatch.setattr(raster, "MAX_CANDIDATES", chunk)
    verts, faces = quad(-0.5, -0.5, 0.5, 0.5, 20.0)
    faces = faces + faces  # faces 2, 3 duplicate 0, 1 exactly: identical z everywhere
    maps = render_reference(scene(verts, faces, size=16))
    ids = maps.pix_to_face[0][maps.pix_to_face[0] >= 0]
    assert set(ids.tolist()) == {0, 1}
    # nearer face wins regardless of id
    verts2 = np.array(verts + [[v[0], v[1], 19.0] for v in verts])
    faces2 = [[0, 1, 2], [4, 5, 6]]
    maps2 = render_reference(scene(verts2, faces2, size=16))
    assert set(maps2.pix_to_face[0][maps2.pix_to_face[0] >= 0].tolist()) == {1}


def test_skips_degenerate_and_behind_faces_and_accepts_both_windings():
    verts = [[-0.5, -0.5, 20], [0.5, -0.5, 20], [0.0, 0.5, 20],  # ccw
             [-0.5, -0.5, 0.0], [0.5, -0.5, 5], [0.0, 0.5, 5],  # a vertex at z < 1e-8: skipped
             [-0.9, -0.9, 1], [0.9, 0.9, 1], [0.0, 0.0, 1]]  # collinear: zero area, skipped
    faces = [[0, 2, 1], [3, 4, 5], [6, 7, 8]]  # face 0 given clockwise
    maps = render_reference(scene(verts, faces, size=32))
    assert set(np.unique(maps.pix_to_face[0]).tolist()) == {-1, 0}


def _loop_reference(inputs):
    """Per-pixel, per-face float32 loop: a literal reading of the contract."""
    v, faces, h, w = inputs.verts_ndc[0], inputs.faces, inputs.height, inputs.width
    p2f = np.full((h, w), -1)
    bary = np.zeros((h, w, 3), F32)
    eps = F32(1e-8)
    e = lambda px, py, a, b: (px - a[0]) * (b[1] - a[1]) - (py - a[1]) * (b[0] - a[0])  # noqa: E731
    for r in range(h):
        py = -((F32(2 * r + 1) / F32(h)) - F32(1))
        for c in range(w):
            px = -((F32(2 * c + 1) / F32(w)) - F32(1))
            best = np.inf
            for f, (i0, i1, i2) in enumerate(faces):
                a, b, cc = v[i0], v[i1], v[i2]
                area = e(cc[0], cc[1], a, b)
                if min(a[2], b[2], cc[2]) < eps or abs(area) <= eps:
                    continue
                area = area + eps
                w0, w1, w2 = e(px, py, b, cc) / area, e(px, py, cc, a) / area, e(px, py, a, b) / area
                if not (w0 > 0 and w1 > 0 and w2 > 0):
                    continue
                pz = w0 * a[2] + w1 * b[2] + w2 * cc[2]
                if pz >= 0 and pz < best:
                    best, p2f[r, c], bary[r, c] = pz, f, (w0, w1, w2)
    return p2f, bary


def test_matches_a_per_pixel_loop_bit_for_bit():
    rng = np.random.default_rng(3)
    verts = np.concatenate([rng.uniform(-1.1, 1.1, (24, 2)), rng.uniform(19, 21, (24, 1))], 1)
    faces = rng.integers(0, 24, (20, 3))
    inputs = scene(verts, faces, size=24)
    maps = render_reference(inputs)
    p2f, bary = _loop_reference(inputs)
    assert (p2f >= 0).sum() > 100
    assert np.array_equal(maps.pix_to_face[0], p2f)
    assert np.array_equal(maps.bary[0], bary)


def test_albedo_fetch_is_bilinear_align_corners_false_with_zero_padding():
    rng = np.random.default_rng(1)
    tex = rng.uniform(0, 1, (3, 8, 8)).astype(F32)
    uv = rng.uniform(-0.05, 1.05, (500, 2)).astype(F32)
    got = rr.sample_albedo(tex, uv)
    ix, iy = uv[:, 0].astype(np.float64) * 8 - 0.5, (1 - uv[:, 1].astype(np.float64)) * 8 - 0.5
    expect = np.zeros((500, 3))
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = np.floor(ix) + dx, np.floor(iy) + dy
            wgt = (1 - np.abs(ix - x)) * (1 - np.abs(iy - y))
            ok = (x >= 0) & (x < 8) & (y >= 0) & (y < 8)
            val = tex[:, np.clip(y, 0, 7).astype(int), np.clip(x, 0, 7).astype(int)].T
            expect += np.where(ok[:, None], wgt[:, None] * val, 0)
    assert np.abs(got - expect).max() < 1e-5


def test_quantiser_rounds_half_up_and_clamps():
    x = np.array([-0.3, 0.0, 0.49 / 255, 0.5 / 255, 1.0, 1.7, 127.5 / 255], F32)
    assert quantize_u8(x).tolist() == [0, 0, 0, 1, 255, 255, 128]


def test_pipeline_form_replicates_depth_and_clamps_normals():
    verts, faces = quad(-0.5, -0.5, 0.5, 0.5, 20.0)
    normals = np.tile([-0.6, 0.0, 0.8], (4, 1))
    maps = render_reference(scene(verts, faces, normals=normals, depth=np.full(4, 0.25), size=16))
    u8 = maps_to_u8_frames(maps)
    cov = maps.alpha[0, 0] > 0
    assert np.all(u8["depth"][0][cov] == 64) and u8["depth"].shape == (1, 16, 16, 3)
    assert np.all(u8["normal"][0][cov] == [0, 0, 204])  # negative x clamps to 0
    assert np.all(u8["render"][0][~cov] == 0)
    assert u8_frames_to_pipeline(u8["depth"]).shape == (1, 3, 16, 16)


def test_head_frame_renders_in_under_a_second_on_this_cpu(shared_dir):
    from engine.flame.synthetic import synthetic_head
    from engine.guidance.demo_motion import demo_flame_params
    from engine.guidance.pipeline import build_raster_inputs, default_albedo

    model = synthetic_head(shared_dir / "assets/deca/head_template.obj")
    params = demo_flame_params(4)
    inputs = build_raster_inputs(params, model, default_albedo(model), 1, 2)
    assert inputs.faces.shape == (9976, 3)
    start = time.perf_counter()
    maps = render_reference(inputs)
    elapsed = time.perf_counter() - start
    coverage = float(maps.alpha.mean())
    print(f"reference render, 512x512, 9976 faces: {elapsed:.3f} s, coverage {coverage:.3f}")
    assert 0.15 < coverage < 0.6  # the head is framed inside the image, not cut off or tiny
    assert maps.depth.max() <= 1 and maps.depth.min() >= 0
