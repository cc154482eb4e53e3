"""Guidance-map rendering speed (depth + normal + render + alpha, 8-bit quantised, NCHW float32)
at 512x512: the CPU reference, the kernel's host build, the CUDA kernel (GPU only) and an
nvdiffrast-composed equivalent (when nvdiffrast and a CUDA torch are installed).

    python -m benchmarks.bench_guidance_render [--batches 1 8 32] [--methods ...]

Scene: the synthetic FLAME-format head with the demo motion (head_template.obj topology from
../shared, 9976 faces, when present). Writes benchmarks/results/guidance_render.{json,md}.
Targets (not asserted anywhere): CUDA kernel < 0.3 ms/frame at batch 32 on an H100-class GPU and
>= 3x nvdiffrast; CPU reference < 1 s/frame.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from benchmarks.common import RESULTS_DIR, machine_info, time_call, write_results
from tests.helpers.kernel_demo_scene import make_demo_scene
from engine.guidance.raster_inputs import RasterInputs

SIZE = 512
METHODS = ("cpu_reference", "host_kernel", "cuda_kernel", "nvdiffrast")
HEAD_TEMPLATE = pathlib.Path(__file__).resolve().parents[2] / "shared/assets/deca/head_template.obj"


def make_scene(batch: int) -> tuple[RasterInputs, str]:
    """The production path's inputs: synthetic FLAME-format head (head_template.obj topology
    when ../shared has it) with the demo motion, through LBS and the DECA camera."""
    try:
        from engine.guidance.pipeline import (
            build_raster_inputs, default_albedo, demo_flame_params, synthetic_head)

        head = synthetic_head(HEAD_TEMPLATE if HEAD_TEMPLATE.is_file() else None)
        scene = build_raster_inputs(demo_flame_params(batch), head, default_albedo(head), 0, batch)
        return scene, f"{head.name}, demo motion ({len(scene.faces)} faces, {scene.verts_ndc.shape[1]} verts)"
    except ImportError as err:
        scene = make_demo_scene(batch, SIZE, SIZE, seed=1, n_lat=70, n_lon=72)
        return scene, f"demo spheres ({len(scene.faces)} faces; FLAME pipeline unavailable: {err})"


# Each runner: (scene, repeats) -> seconds per call for the whole batch, or raises Unavailable.
class Unavailable(Exception):
    pass


def run_cpu_reference(scene: RasterInputs, repeats: int) -> float:
    try:
        from engine.guidance.quantize import maps_to_u8_frames
        from engine.guidance.reference_renderer import render_reference
    except ImportError as err:
        raise Unavailable(f"reference renderer not importable: {err}")
    return time_call(lambda: maps_to_u8_frames(render_reference(scene)), repeats)


def run_host_kernel(scene: RasterInputs, repeats: int) -> float:
    from engine.guidance.kernel_host import HostKernel
    from engine.guidance.kernel_outputs import KernelOutputSpec

    kernel, spec = HostKernel.load(), KernelOutputSpec.make(np.float32, quantize=True)
    return time_call(lambda: kernel.render(scene, spec), repeats)


def run_cuda_kernel(scene: RasterInputs, repeats: int) -> float:
    """Device-resident inputs and outputs: both passes + z-buffer clear, synchronised."""
    from engine.guidance.kernel_cuda import CudaGuidanceKernel, DeviceBatch
    from engine.guidance.kernel_errors import CudaUnavailableError
    from engine.guidance.kernel_outputs import KernelOutputSpec

    try:
        kernel = CudaGuidanceKernel.load()
    except CudaUnavailableError as err:
        raise Unavailable(str(err))
    batch = DeviceBatch.upload(kernel, scene, KernelOutputSpec.make(np.float32, quantize=True))
    sync = kernel.driver.cuCtxSynchronize
    iters = 20

    def many():
        for _ in range(iters):
            batch.run()
        sync()

    try:
        return time_call(many, repeats) / iters
    finally:
        batch.free()
        kernel.close()


def run_nvdiffrast(scene: RasterInputs, repeats: int) -> float:
    """The same work composed from nvdiffrast + torch: rasterize, interpolate depth/normal/uv,
    bilinear texture, SH shading, quantise, NCHW float32."""
    try:
        import nvdiffrast.torch as dr
        import torch
    except ImportError as err:
        raise Unavailable(f"nvdiffrast not installed ({err})")
    if not torch.cuda.is_available():
        raise Unavailable("nvdiffrast needs a CUDA torch and a GPU")
    dev = torch.device("cuda")
    v = torch.from_numpy(scene.verts_ndc).to(dev)
    z = v[..., 2]
    z_clip = (z - z.min()) / (z.max() - z.min() + 1e-6) * 1.8 - 0.9
    # pytorch3d space -> clip space: x = X_s = -x, y: nvdiffrast row 0 is clip y = -1 = our top row
    pos = torch.stack([-v[..., 0], -v[..., 1], z_clip, torch.ones_like(z)], -1).contiguous()
    tri = torch.from_numpy(scene.faces).to(dev)
    uv_tri = torch.from_numpy(scene.uv_faces).to(dev)
    attrs = torch.cat([torch.from_numpy(scene.vert_depth)[..., None],
                       torch.from_numpy(scene.vert_normals)], -1).to(dev).contiguous()
    uvs = torch.from_numpy(scene.uvs).to(dev)
    uvs = torch.stack([uvs[:, 0], 1 - uvs[:, 1]], -1).contiguous()  # texture rows from the top
    tex = torch.from_numpy(scene.albedo).to(dev).permute(1, 2, 0)[None].contiguous()
    sh = torch.from_numpy(scene.sh_light).to(dev)
    c = torch.tensor([0.28209479, 1.02332671, 1.02332671, 1.02332671, 0.85808553, 0.85808553,
                      0.85808553, 0.42904277, 0.24770796], device=dev)
    ctx = dr.RasterizeCudaContext()

    def render():
        rast, _ = dr.rasterize(ctx, pos, tri, resolution=[scene.height, scene.width])
        dn, _ = dr.interpolate(attrs, rast, tri)
        uv, _ = dr.interpolate(uvs, rast, uv_tri)
        alb = dr.texture(tex.expand(len(pos), -1, -1, -1).contiguous(), uv.contiguous(), filter_mode="linear")
        n = dn[..., 1:]
        nx, ny, nz = n.unbind(-1)
        basis = torch.stack([torch.ones_like(nx), nx, ny, nz, nx * ny, nx * nz, ny * nz,
                             nx * nx - ny * ny, 3 * nz * nz - 1], -1) * c
        shade = torch.einsum("bhwk,bkc->bhwc", basis, sh)
        alpha = (rast[..., 3:] > 0).float()
        out = torch.cat([dn[..., :1].expand(-1, -1, -1, 3), n, alb * shade], -1) * alpha
        q = torch.floor(torch.clamp(out * 255 + 0.5, 0, 255)) / 255
        return q.permute(0, 3, 1, 2).contiguous(), alpha.permute(0, 3, 1, 2).contiguous()

    iters = 20

    def many():
        for _ in range(iters):
            render()
        torch.cuda.synchronize()

    return time_call(many, repeats) / iters


RUNNERS = {
    "cpu_reference": run_cpu_reference,
    "host_kernel": run_host_kernel,
    "cuda_kernel": run_cuda_kernel,
    "nvdiffrast": run_nvdiffrast,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=3, help="best of N timed runs (default 3)")
    parser.add_argument("--max-cpu-batch", type=int, default=8,
                        help="skip CPU methods above this batch (default 8: they scale linearly)")
    parser.add_argument("--out-dir", type=pathlib.Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    rows, notes, scene_desc = [], [], ""
    for batch in args.batches:
        scene, scene_desc = make_scene(batch)
        for method in args.methods:
            if method in ("cpu_reference", "host_kernel") and batch > args.max_cpu_batch:
                continue
            try:
                seconds = RUNNERS[method](scene, args.repeats)
            except Unavailable as why:
                note = f"{method}: not measured: {why}"
                if note not in notes:
                    notes.append(note)
                continue
            row = {"method": method, "batch": batch, "ms_per_frame": 1e3 * seconds / batch,
                   "frames_per_s": batch / seconds}
            rows.append(row)
            print(f"{method:14s} batch {batch:3d}: {row['ms_per_frame']:9.3f} ms/frame "
                  f"({row['frames_per_s']:.1f} frames/s)", flush=True)
    meta = {**machine_info(), "resolution": f"{SIZE}x{SIZE}", "scene": scene_desc,
            "output": "depth x3 + normal + render (q(x)/255, float32 NCHW) + alpha",
            "timing": f"best of {args.repeats}", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    json_path, md_path = write_results(
        "guidance_render", "Guidance-map rendering speed", rows,
        ["method", "batch", "ms_per_frame", "frames_per_s"], meta, notes, args.out_dir)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
