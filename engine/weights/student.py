"""A distilled student of the denoising UNet3D, as a file beside the teacher's weights.

    WEIGHTS/student/student.safetensors      (found automatically; or any file via --student FILE)

safetensors; metadata (all strings): format "mprt-student/1", kind "full" | "lora", scheduler "lcm",
steps (training steps done), config (the distillation settings, JSON), teacher (the teacher's
denoising_unet file name and size), lora_rank / lora_alpha for kind "lora".
  kind full: the whole denoising UNet3D state dict in upstream's key names (motion modules included);
  kind lora: for each adapted Linear / Conv2d `M`, tensors `M.lora_A.weight` (r, in[, k, k]) and
             `M.lora_B.weight` (out, r[, 1, 1]); loading adds (alpha / r) * B @ A to the teacher's weight.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import torch

from engine.errors import CheckpointError, InputError

FORMAT = "mprt-student/1"
STUDENT_DIR, STUDENT_FILE = "student", "student.safetensors"


@dataclasses.dataclass
class StudentFile:
    path: pathlib.Path
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    @property
    def kind(self) -> str:
        return self.metadata["kind"]

    def describe(self) -> str:
        rank = f", LoRA rank {self.metadata.get('lora_rank')}" if self.kind == "lora" else ""
        return f"student {self.path} ({self.kind}{rank}, {self.metadata.get('steps', '?')} distillation steps)"


def find_student(weights_root: str | pathlib.Path) -> pathlib.Path | None:
    """WEIGHTS/student/student.safetensors if it exists."""
    path = pathlib.Path(weights_root) / STUDENT_DIR / STUDENT_FILE
    return path if path.is_file() else None


def read_student(path: str | pathlib.Path) -> StudentFile:
    from safetensors import safe_open
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"--student {path}: file not found")
    try:
        with safe_open(str(path), "pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # not safetensors, truncated
        raise CheckpointError(f"{path}: cannot read the student file ({type(err).__name__}: {err})") from None
    if metadata.get("format") != FORMAT or metadata.get("kind") not in ("full", "lora"):
        raise CheckpointError(f"{path}: not a student file (metadata format {metadata.get('format')!r}, kind "
                              f"{metadata.get('kind')!r}; expected {FORMAT!r}, 'full' or 'lora': write it with mprt distill)")
    return StudentFile(path, tensors, metadata)


def write_student(path: str | pathlib.Path, tensors: dict[str, torch.Tensor], kind: str, steps: int,
                  config: dict, teacher: str, extra: dict[str, str] | None = None, overwrite: bool = True,
                  fp16: bool = False) -> pathlib.Path:
    """`fp16`: floating tensors stored in half precision (recorded as stored_dtype; the loader casts)."""
    from safetensors.torch import save
    from engine.io.atomic import atomic_file
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists (pass --overwrite to replace it)")
    metadata = {"format": FORMAT, "kind": kind, "scheduler": "lcm", "steps": str(steps),
                "config": json.dumps(config, sort_keys=True), "teacher": teacher, **(extra or {})}
    if fp16:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        metadata["stored_dtype"] = "float16"
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write(data)
    return path


@torch.no_grad()
def apply_student(unet: torch.nn.Module, student: StudentFile) -> None:
    """Turn the teacher's denoising UNet into the student, in place."""
    expected = unet.state_dict()
    if student.kind == "full":
        missing = sorted(set(expected) - set(student.tensors))
        unexpected = sorted(set(student.tensors) - set(expected))
        wrong = [k for k in expected if k in student.tensors and student.tensors[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise CheckpointError(f"{student.path}: does not fit this model's denoising UNet: {len(missing)} keys missing "
                                  f"{missing[:2]}, {len(unexpected)} unexpected {unexpected[:2]}, wrong shapes {wrong[:2]}")
        unet.load_state_dict({k: v.to(expected[k].dtype) for k, v in student.tensors.items()})
        return
    scale = float(student.metadata["lora_alpha"]) / float(student.metadata["lora_rank"])
    modules = dict(unet.named_modules())
    pairs = sorted({k.rsplit(".lora_", 1)[0] for k in student.tensors})
    for name in pairs:
        a, b = student.tensors.get(f"{name}.lora_A.weight"), student.tensors.get(f"{name}.lora_B.weight")
        target = modules.get(name)
        if a is None or b is None or not isinstance(target, (torch.nn.Linear, torch.nn.Conv2d)):
            raise CheckpointError(f"{student.path}: LoRA pair for {name!r} does not fit this model "
                                  "(missing A/B or no Linear/Conv2d of that name)")
        delta = (b.reshape(b.shape[0], -1).double() @ a.reshape(a.shape[0], -1).double()) * scale
        if delta.numel() != target.weight.numel():
            raise CheckpointError(f"{student.path}: LoRA pair for {name!r} has shape {tuple(b.shape)} x {tuple(a.shape)}, "
                                  f"the weight is {tuple(target.weight.shape)}")
        target.weight += delta.reshape(target.weight.shape).to(target.weight.device, target.weight.dtype)


def resolve_student(option: str | None, weights_root) -> pathlib.Path | None:
    """--student: None / 'none' -> no student; 'auto' -> WEIGHTS/student/student.safetensors if present;
    anything else is a file path, which must exist."""
    if option in (None, "none"):
        return None
    if option == "auto":
        return find_student(weights_root) if weights_root is not None else None
    path = pathlib.Path(option)
    if not path.is_file():
        raise CheckpointError(f"--student {path}: file not found (expected a student.safetensors from mprt distill)")
    return path


def use_student(model, path: str | pathlib.Path) -> str:
    """Load the student at `path` into `model`'s denoising UNet (in place); returns its description."""
    student = read_student(path)
    apply_student(model.denoising_unet, student)
    model.denoiser = student.describe()
    return model.denoiser
