"""The I/O contract of every exported network graph, as data (torch-free: numpy + dataclasses).

Each graph declares its spec once, in its own module of engine/graphs/ (with its forward); ONNX
export (export/), engine build (`mprt build`) and the runtime backends (engine/backends/) all read
those declarations, through export.json and the engine manifests, so a name, dtype or axis is never
spelled twice. A Jetson running TensorRT needs only this module and numpy.

Shapes are tuples whose entries are ints (static) or axis names (dynamic):
  "batch"  — samples per UNet call: 1 without CFG, 2 under CFG ([uncond ; cond], networks.md (b).6)
  "frames" — frames per call (the context window, <= the motion modules' 32 positions)
  "images" — reference images per VAE-encoder call
  "crops"  — face crops per driving-encoder call
Spatial sizes are static: one export is for one output size (the reference K/V length depends on it).
Latent size h = H / 8, w = W / 8. Files are `<name>.<precision>.onnx`; "float" is float32 in fp32
graphs and float16 in fp16 graphs; `timestep` and `use_reference` stay float32.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from engine.errors import InputError
from engine.networks.config import ModelConfig

PRECISIONS = ("fp32", "fp16")
REFERENCE_MODES = ("kv", "features")
TEXT_TOKENS = 77
REFERENCE_TRANSFORMERS = 16  # SD1.5: 2+2+2 down, 1 mid, 3+3+3 up


@dataclasses.dataclass(frozen=True)
class AxisRange:
    """Min / opt / max of one dynamic axis: a TensorRT optimisation profile's three points."""

    min: int
    opt: int
    max: int

    def __post_init__(self):
        if not (1 <= self.min <= self.opt <= self.max):
            raise InputError(f"axis range {self.min}:{self.opt}:{self.max}: expected 1 <= MIN <= OPT <= MAX")

    @classmethod
    def parse(cls, text: str, what: str) -> "AxisRange":
        """'MIN:OPT:MAX' (or a single N for a static value)."""
        parts = text.split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InputError(f"{what}: expected MIN:OPT:MAX integers, got {text!r}") from None
        if len(values) == 1:
            values *= 3
        if len(values) != 3:
            raise InputError(f"{what}: expected MIN:OPT:MAX, got {text!r}")
        try:
            return cls(*values)
        except InputError as err:
            raise InputError(f"{what}: {err}") from None

    def contains(self, value: int) -> bool:
        return self.min <= value <= self.max

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "float32", "float16"
    shape: tuple[int | str, ...]  # ints static, strings name a dynamic axis
    sample: str = "normal"  # values of test inputs: one of SAMPLE_KINDS

    def resolve(self, axes: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else int(axes[d]) for d in self.shape)

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        return d if self.sample == "normal" else {**d, "sample": self.sample}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "TensorSpec":
        return cls(str(d["name"]), str(d["dtype"]), tuple(d["shape"]), str(d.get("sample", "normal")))


SAMPLE_KINDS = {  # test-input values by kind: (rng, shape) -> array
    "normal": lambda rng, shape: rng.standard_normal(shape),
    "unit": lambda rng, shape: rng.random(shape),                       # images / maps in [0, 1]
    "signed": lambda rng, shape: rng.random(shape) * 2 - 1,             # images in [-1, 1]
    "timestep": lambda rng, shape: rng.integers(0, 1000, size=shape),   # diffusion timesteps
    "use_reference": lambda rng, shape: (np.arange(shape[0]) == shape[0] - 1).astype(np.float32),  # [uncond ; cond]
}


@dataclasses.dataclass(frozen=True)
class GraphSpec:
    """One graph's inputs, outputs and dynamic-axis ranges."""

    name: str
    precision: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    axes: Mapping[str, AxisRange]

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.precision}.onnx"

    def tensor(self, name: str) -> TensorSpec:
        """The input or output called `name`."""
        for t in self.inputs + self.outputs:
            if t.name == name:
                return t
        raise InputError(f"{self.name}: no tensor {name!r}; it has {self.input_names + self.output_names}")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def axis_points(self, point: str) -> dict[str, int]:
        """Every axis at its "min", "opt" or "max"."""
        return {a: getattr(r, point) for a, r in self.axes.items()}

    def profile(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """Input name -> (min, opt, max) shapes: the TensorRT optimisation profile."""
        pts = [self.axis_points(p) for p in ("min", "opt", "max")]
        return {t.name: tuple(t.resolve(p) for p in pts) for t in self.inputs}

    def sample_inputs(self, axes: Mapping[str, int] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Deterministic inputs of the declared shapes and dtypes, with values in each input's range."""
        axes = {**self.axis_points("opt"), **(axes or {})}
        rng = np.random.default_rng(seed)
        feeds = {}
        for t in self.inputs:
            x = SAMPLE_KINDS[t.sample](rng, t.resolve(axes))
            feeds[t.name] = x.astype(t.dtype)
        return feeds

    def check_inputs(self, feeds: Mapping[str, np.ndarray]) -> dict[str, int]:
        """Validate names, dtypes, ranks and shapes; return the dynamic axis values. Raises InputError."""
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise InputError(f"{self.name}: inputs missing {missing}, unexpected {extra}; "
                             f"expected {self.input_names}")
        axes: dict[str, int] = {}
        for t in self.inputs:
            arr = feeds[t.name]
            if str(arr.dtype) != t.dtype:
                raise InputError(f"{self.name}: input {t.name} has dtype {arr.dtype}, expected {t.dtype}")
            if len(arr.shape) != len(t.shape):
                raise InputError(f"{self.name}: input {t.name} has shape {tuple(arr.shape)}, expected "
                                 f"{self.describe_shape(t)}")
            for dim, want in zip(arr.shape, t.shape):
                if isinstance(want, str) and axes.setdefault(want, dim) != dim:
                    raise InputError(f"{self.name}: input {t.name} has {want}={dim}, but an earlier input has "
                                     f"{axes[want]}")
                if dim != want if isinstance(want, int) else not self.axes[want].contains(dim):
                    raise InputError(f"{self.name}: input {t.name} has shape {tuple(arr.shape)}, expected "
                                     f"{self.describe_shape(t)}")
        return axes

    def describe_shape(self, t: TensorSpec) -> str:
        dims = [str(d) if isinstance(d, int) else f"{d}[{self.axes[d].min}..{self.axes[d].max}]" for d in t.shape]
        return "(" + ", ".join(dims) + ")"

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export's `dynamic_axes` for inputs and outputs."""
        out = {}
        for t in self.inputs + self.outputs:
            dyn = {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
            if dyn:
                out[t.name] = dyn
        return out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "precision": self.precision, "file": self.file_name,
                "inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs],
                "axes": {a: [r.min, r.opt, r.max] for a, r in self.axes.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "GraphSpec":
        return cls(name=str(d["name"]), precision=str(d["precision"]),
                   inputs=tuple(TensorSpec.from_json(t) for t in d["inputs"]),
                   outputs=tuple(TensorSpec.from_json(t) for t in d["outputs"]),
                   axes={a: AxisRange(*r) for a, r in d["axes"].items()})


@dataclasses.dataclass(frozen=True)
class ExportPlan:
    """What one `mprt export` produces: sizes, axis ranges, precisions and the reference mode."""

    image_size: tuple[int, int]  # (H, W) pixels
    frames: AxisRange = AxisRange(1, 12, 32)
    batch: AxisRange = AxisRange(1, 2, 2)
    images: AxisRange = AxisRange(1, 1, 1)
    precisions: tuple[str, ...] = ("fp32",)
    reference_mode: str = "kv"
    driving: bool = False  # also the driving encoders' graphs (DECA, SMIRK)
    crops: AxisRange = AxisRange(1, 8, 16)  # face crops per driving-encoder call
    extra_graphs: tuple[str, ...] = ()  # optional graphs asked for by name (engine/graphs/<name>.py `wanted`)
    streams: AxisRange = AxisRange(1, 4, 8)  # samples per call of the cross-session graph (denoising_unet_streams)

    def __post_init__(self):
        h, w = self.image_size
        if h % 64 or w % 64 or h <= 0 or w <= 0:
            raise InputError(f"image size {w}x{h}: both sides must be positive multiples of 64 "
                             "(8 for the VAE x 8 for the UNet's three downsamplings)")
        if self.batch.max > 2:
            raise InputError(f"batch range {self.batch}: at most 2 (CFG's two halves)")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise InputError(f"precisions {list(self.precisions)}: expected some of {list(PRECISIONS)}")
        if self.reference_mode not in REFERENCE_MODES:
            raise InputError(f"reference mode {self.reference_mode!r}: expected one of {list(REFERENCE_MODES)}")

    def to_json(self) -> dict[str, Any]:
        return {"image_size": list(self.image_size), "frames": str(self.frames), "batch": str(self.batch),
                "images": str(self.images), "precisions": list(self.precisions),
                "reference_mode": self.reference_mode, "driving": self.driving, "crops": str(self.crops),
                "extra_graphs": list(self.extra_graphs), "streams": str(self.streams)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ExportPlan":
        return cls(image_size=tuple(d["image_size"]), frames=AxisRange.parse(d["frames"], "frames"),
                   batch=AxisRange.parse(d["batch"], "batch"), images=AxisRange.parse(d["images"], "images"),
                   precisions=tuple(d["precisions"]), reference_mode=str(d["reference_mode"]),
                   driving=bool(d.get("driving", False)), crops=AxisRange.parse(d.get("crops", "1:8:16"), "crops"),
                   extra_graphs=tuple(d.get("extra_graphs", ())),
                   streams=AxisRange.parse(d["streams"], "streams") if "streams" in d else cls.streams)


def reference_token_shapes(config: ModelConfig, latent_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """(L_i, C_i) of the 16 reference features, in execution (= writer/reader pairing) order."""
    u = config.unet
    ch = u.block_out_channels
    h, w = latent_hw
    shapes = []
    n_down = len(ch)
    for i, kind in enumerate(u.down_block_types):
        if kind.startswith("CrossAttn"):
            shapes += [((h >> i) * (w >> i), ch[i])] * u.layers_per_block
    deep = n_down - 1
    shapes.append(((h >> deep) * (w >> deep), ch[-1]))  # mid block
    rev = list(reversed(ch))
    for i, kind in enumerate(u.up_block_types):
        if kind.startswith("CrossAttn"):
            s = deep - i
            shapes += [((h >> s) * (w >> s), rev[i])] * (u.layers_per_block + 1)
    if len(shapes) != REFERENCE_TRANSFORMERS:
        raise InputError(f"UNet layout gives {len(shapes)} spatial transformers, expected {REFERENCE_TRANSFORMERS}")
    return shapes


def reference_names(mode: str) -> list[str]:
    """Reference tensor names in pairing order: ref_k_00, ref_v_00, ... or ref_feature_00, ..."""
    if mode == "kv":
        return [f"ref_{kv}_{i:02d}" for i in range(REFERENCE_TRANSFORMERS) for kv in ("k", "v")]
    return [f"ref_feature_{i:02d}" for i in range(REFERENCE_TRANSFORMERS)]


def float_dtype(precision: str) -> str:
    """The dtype of a graph's float tensors at `precision`."""
    return "float16" if precision == "fp16" else "float32"


def latent_hw(config: ModelConfig, plan: ExportPlan) -> tuple[int, int]:
    H, W = plan.image_size
    return H // config.vae_downscale, W // config.vae_downscale


def text_spec(config: ModelConfig, precision: str, lead: int | str = 1) -> TensorSpec:
    """The CLIP text embedding input (lead, 77, D) of the reference and denoising graphs (lead 1: shared)."""
    return TensorSpec("text_embedding", float_dtype(precision), (lead, TEXT_TOKENS, config.unet.cross_attention_dim))


def reference_specs(config: ModelConfig, plan: ExportPlan, precision: str,
                    lead: int | str = 1) -> tuple[TensorSpec, ...]:
    """The reference tensors (reference graph outputs = denoising UNet inputs), in pairing order; `lead`
    is their first dimension (1: one identity; an axis name: one identity per sample)."""
    shapes = reference_token_shapes(config, latent_hw(config, plan))
    per = 2 if plan.reference_mode == "kv" else 1
    return tuple(TensorSpec(n, float_dtype(precision), (lead, *shapes[i // per]))
                 for i, n in enumerate(reference_names(plan.reference_mode)))


def find_spec(specs: Sequence[GraphSpec], name: str, precision: str) -> GraphSpec:
    for s in specs:
        if s.name == name and s.precision == precision:
            return s
    have = sorted({f"{s.name}/{s.precision}" for s in specs})
    raise InputError(f"no graph {name}/{precision} in this export; it has {have}")


EXPORT_MANIFEST = "export.json"  # written by `mprt export` beside the graphs


@dataclasses.dataclass(frozen=True)
class ExportedGraphs:
    """An export directory as `mprt export` left it: the plan, every graph's spec and file facts."""

    directory: str
    plan: ExportPlan
    specs: tuple[GraphSpec, ...]
    reports: Mapping[str, Mapping[str, Any]]  # file name -> {"sha256", "bytes", "nodes", "parity", ...}

    def path(self, spec: GraphSpec) -> str:
        return f"{self.directory}/{spec.file_name}"

    def verified_path(self, spec: GraphSpec) -> str:
        """The graph's file, checked to be there, whole, and the one export.json describes (size, sha256)."""
        import pathlib

        from engine.io.hashing import sha256_file
        path = pathlib.Path(self.path(spec))
        fix = f"; re-run `mprt export` into {self.directory}"
        report = self.reports.get(spec.file_name)
        if not path.is_file():
            raise InputError(f"{path}: ONNX file missing{fix}")
        if report is None:
            raise InputError(f"{path}: not listed in export.json{fix}")
        data = path.with_name(path.name + ".data")
        size = path.stat().st_size + (data.stat().st_size if data.exists() else 0)
        if size != report["bytes"]:
            raise InputError(f"{path}: {size} bytes, export.json says {report['bytes']} (truncated or replaced){fix}")
        if sha256_file(path) != report["sha256"]:
            raise InputError(f"{path}: content differs from export.json's sha256 (modified){fix}")
        return str(path)


def read_export_manifest(directory: str) -> ExportedGraphs:
    """Read `<directory>/export.json`. Raises InputError naming what is missing or malformed."""
    import json
    import pathlib
    path = pathlib.Path(directory) / EXPORT_MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: not found; expected an `mprt export` output directory")
    try:
        data = json.loads(path.read_text())
        plan = ExportPlan.from_json(data["plan"])
        specs = tuple(GraphSpec.from_json(g) for g in data["graphs"])
        reports = {r["file"]: r for r in data["reports"]}
        for file, report in reports.items():
            for key in ("bytes", "sha256"):
                if key not in report:
                    raise KeyError(f"reports[{file}].{key}")
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a valid export manifest ({type(err).__name__}: {err})") from None
    return ExportedGraphs(str(directory), plan, specs, reports)
