"""Thin torch adapter for the CUDA guidance kernel: renders from CUDA tensors into new CUDA
tensors on torch's current stream (no host round trip). The runtime keeps maps on the GPU and
feeds the guidance encoders with them directly."""
from __future__ import annotations

from engine.errors import InputError
from engine.guidance.kernel_abi import make_scene_struct, make_targets_struct
from engine.guidance.kernel_cuda import CudaGuidanceKernel
from engine.guidance.kernel_outputs import KernelOutputSpec

# Contract name -> kernel ABI name, dtype name, rank (kernel_abi.SCENE_ARRAYS order).
_SCENE_TENSORS = (
    ("verts_ndc", "verts", "float32", 3),
    ("vert_normals", "normals", "float32", 3),
    ("vert_depth", "vdepth", "float32", 2),
    ("faces", "faces", "int32", 2),
    ("uv_faces", "uv_faces", "int32", 2),
    ("uvs", "uvs", "float32", 2),
    ("albedo", "albedo", "float32", 3),
    ("sh_light", "sh", "float32", 3),
)


def render_guidance_torch(kernel: CudaGuidanceKernel, tensors: dict, height: int, width: int,
                          spec: KernelOutputSpec | None = None) -> dict:
    """tensors: the RasterInputs fields (same names and shapes) as CUDA tensors on the kernel's
    device. Returns {"depth", "normal", "render", "alpha"[, "pix_to_face", "bary"]} CUDA tensors;
    the work is enqueued on torch.cuda.current_stream() (no synchronisation)."""
    import torch

    spec = spec or KernelOutputSpec.make()
    device = torch.device("cuda", kernel.ordinal)
    missing = [n for n, *_ in _SCENE_TENSORS if not isinstance(tensors.get(n), torch.Tensor)]
    if missing:
        raise InputError(f"render_guidance_torch: tensor(s) {', '.join(map(repr, missing))} missing")
    pointers, keep = {}, []
    for name, abi_name, dtype, rank in _SCENE_TENSORS:
        t = tensors[name]
        if t.device != device or t.dtype != getattr(torch, dtype) or t.dim() != rank:
            raise InputError(
                f"render_guidance_torch: {name} must be a {rank}-D {dtype} tensor on {device}, "
                f"got {tuple(t.shape)} {t.dtype} on {t.device}"
            )
        t = t.contiguous()
        keep.append(t)
        pointers[abi_name] = t.data_ptr()
    depth_z = tensors.get("depth_z")  # optional: z of the depth pass (spec §7)
    if depth_z is not None:
        if depth_z.device != device or depth_z.dtype != torch.float32 or depth_z.dim() != 2:
            raise InputError(f"render_guidance_torch: depth_z must be a 2-D float32 tensor on {device}")
        depth_z = depth_z.contiguous()
        keep.append(depth_z)
        pointers["depth_z"] = depth_z.data_ptr()
    verts, faces, uvs, albedo = (tensors[k] for k in ("verts_ndc", "faces", "uvs", "albedo"))
    batch, num_verts = int(verts.shape[0]), int(verts.shape[1])
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= num_verts):
        raise InputError(f"render_guidance_torch: faces must index [0, {num_verts})")
    uv_faces = tensors["uv_faces"]
    if uv_faces.numel() and (int(uv_faces.min()) < 0 or int(uv_faces.max()) >= uvs.shape[0]):
        raise InputError(f"render_guidance_torch: uv_faces must index [0, {uvs.shape[0]})")
    scene = make_scene_struct(
        pointers, batch=batch, num_verts=num_verts, num_faces=int(faces.shape[0]),
        num_uvs=int(uvs.shape[0]), height=height, width=width,
        tex_h=int(albedo.shape[1]), tex_w=int(albedo.shape[2]))
    dtypes = {"float32": torch.float32, "float16": torch.float16, "int32": torch.int32}
    out = {
        name: torch.empty(shape, dtype=dtypes[dt.name], device=device)
        for name, (shape, dt) in spec.shapes(batch, height, width).items()
    }
    targets = make_targets_struct({k: t.data_ptr() for k, t in out.items()}, spec)
    zbuf = torch.empty(2 * batch * height * width, dtype=torch.int64, device=device)  # main + depth pass
    stream = torch.cuda.current_stream(device)
    kernel.launch(scene, targets, zbuf.data_ptr(), stream.cuda_stream)
    return out
