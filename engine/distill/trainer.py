"""`mprt distill`'s training loop: the student is the teacher's denoising UNet3D (motion modules
included), fully fine-tuned or with LoRA adapters; its EMA is the consistency target; reference UNet,
guidance encoders and VAE stay frozen (engine.distill.cache). Seeded per step (a resumed run draws
the same windows and noise as an uninterrupted one); checkpoints are written whole or not at all.
CPU for the small model; on CUDA the forward passes run under autocast (bf16 where supported, else
fp16 with a gradient scaler).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import pathlib
import sys
from typing import Sequence

import numpy as np
import torch

from engine.distill.cache import CachedClip
from engine.distill.objective import TIMESTEP_MODES, Objective, Window, step_indices
from engine.errors import InputError

CHECKPOINT = "checkpoint.pt"


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    steps: int = 2000                 # optimizer steps
    batch: int = 1                    # windows per optimizer step (gradients accumulated)
    lr: float = 1e-4
    windows: tuple[int, ...] = (8, 12)  # window lengths drawn (the runtime's stream-batch and context windows)
    timestep_mode: str = "mixed"      # clip | stream | mixed
    stream_steps: tuple[int, ...] = (2, 4)
    teacher_steps: int = 20
    guidance_scale: float = 3.5
    ema_decay: float = 0.95
    huber_c: float = 1e-3
    data_weight: float = 16.0         # squared error to the clip's x0 beside the consistency term (0: pure CD)
    lora_rank: int = 0                # 0: full fine-tune
    lora_alpha: float | None = None   # default: = rank
    grad_checkpointing: bool = False
    grad_clip: float = 1.0
    seed: int = 0

    def validate(self) -> "DistillConfig":
        if self.timestep_mode not in TIMESTEP_MODES:
            raise InputError(f"--timesteps: expected one of {TIMESTEP_MODES}, got {self.timestep_mode!r}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0:
            raise InputError(f"--steps / --batch / --lr: expected positive values, got {self.steps} / {self.batch} / {self.lr}")
        if not self.windows or min(self.windows) < 1 or max(self.windows) > 32:
            raise InputError(f"--windows: expected frame counts in 1..32, got {list(self.windows)}")
        if any(self.teacher_steps % k for k in self.stream_steps):
            raise InputError(f"--stream-steps {list(self.stream_steps)}: each must divide the teacher's "
                             f"{self.teacher_steps} steps")
        if self.data_weight < 0:
            raise InputError(f"--data-weight: expected >= 0, got {self.data_weight}")
        if self.lora_rank < 0 or not 0 <= self.ema_decay < 1:
            raise InputError("--lora-rank must be >= 0 and --ema-decay in [0, 1)")
        return self

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def kind(self) -> str:
        return "lora" if self.lora_rank else "full"


def enable_gradient_checkpointing(unet: torch.nn.Module) -> None:
    """Recompute resnets, transformers and motion modules in the backward pass (pure tensor functions;
    the block-level loop keeps Python state, so it is not checkpointed itself). State-dict keys unchanged."""
    from torch.utils.checkpoint import checkpoint

    from engine.networks.layers import ResnetBlock
    from engine.networks.motion_module import MotionModule
    from engine.networks.transformer import SpatialTransformer
    for m in unet.modules():
        if isinstance(m, (ResnetBlock, SpatialTransformer, MotionModule)):
            m.forward = functools.partial(checkpoint, m.forward, use_reentrant=False)


class Distiller:
    def __init__(self, model, clips: Sequence[CachedClip], config: DistillConfig, device: str | torch.device = "cpu"):
        self.model, self.clips, self.config = model, list(clips), config.validate()
        self.device = torch.device(device)
        self.unet = model.denoising_unet.to(self.device, torch.float32)
        self.text = model.text_embedding.to(self.device, torch.float32)
        if config.lora_rank:
            from engine.distill.lora import adapters_disabled, add_lora
            add_lora(self.unet, config.lora_rank, config.lora_alpha or config.lora_rank)
            self.unet.to(self.device)
            teacher_ctx = lambda: adapters_disabled(self.unet)  # noqa: E731
        else:
            teacher = copy.deepcopy(self.unet).requires_grad_(False)
            self.unet.requires_grad_(True)
            teacher_ctx = lambda: contextlib.nullcontext(teacher)  # noqa: E731
        if config.grad_checkpointing:
            enable_gradient_checkpointing(self.unet)
        self.params = {n: p for n, p in self.unet.named_parameters() if p.requires_grad}
        self.ema = {n: p.detach().clone() for n, p in self.params.items()}
        self.optimizer = torch.optim.AdamW(list(self.params.values()), lr=config.lr, weight_decay=0.0)
        self.amp_dtype = None
        if self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0

        def call(net_ctx):
            def run(x, t, guidance, refs, keep):
                with net_ctx() as net, self._autocast():
                    kv = net.project_reference(refs)
                    return net(x, t, self.text, guidance, kv, keep)
            return run

        self.objective = Objective(student=call(lambda: contextlib.nullcontext(self.unet)), teacher=call(teacher_ctx),
                                   ema_target=self._ema_weights, guidance_scale=config.guidance_scale,
                                   teacher_steps=config.teacher_steps, huber_c=config.huber_c,
                                   data_weight=config.data_weight)
        if not self.clips:
            raise InputError("distillation data: no clips")

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    @contextlib.contextmanager
    def _ema_weights(self):
        """The student's trainable tensors swapped with their EMA for the duration (no second model)."""
        with torch.no_grad():
            for n, p in self.params.items():
                tmp = p.detach().clone()
                p.copy_(self.ema[n])
                self.ema[n] = tmp
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.params.items():
                    tmp = p.detach().clone()
                    p.copy_(self.ema[n])
                    self.ema[n] = tmp

    # -- data ------------------------------------------------------------------------------------
    def window(self, step: int, item: int) -> Window:
        """The `item`-th window of optimizer step `step`: clip, length, start, per-frame levels, noise —
        all drawn from (seed, step, item), so resuming replays exactly."""
        c = self.config
        rng = np.random.default_rng([c.seed, step, item])
        clip = self.clips[int(rng.integers(len(self.clips)))]
        frames = min(int(rng.choice(c.windows)), clip.frames)
        start = int(rng.integers(clip.frames))
        idx = torch.tensor([(start + j) % clip.frames for j in range(frames)])  # wraps like context windows
        levels = step_indices(rng, frames, c.timestep_mode, c.teacher_steps, c.stream_steps)
        gen = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        noise = torch.randn((1, *clip.x0.shape[1:2], frames, *clip.x0.shape[3:]), generator=gen)
        return Window(clip.x0[:, :, idx], clip.guidance[:, :, idx], clip.ref_features, levels, noise).to(self.device)

    # -- training --------------------------------------------------------------------------------
    def train_step(self) -> float:
        c = self.config
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for item in range(c.batch):
            loss = self.objective.loss(self.window(self.step, item)) / c.batch
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            for n, p in self.params.items():
                self.ema[n].lerp_(p.detach(), 1 - c.ema_decay)
        self.step += 1
        return total

    def eval_loss(self, windows: Sequence[Window]) -> float:
        with torch.no_grad():
            return float(np.mean([float(self.objective.loss(w)) for w in windows]))

    def train(self, until: int, out_dir: pathlib.Path | None = None, checkpoint_every: int = 100,
              progress: bool = True) -> list[float]:
        from tqdm import tqdm
        losses = []
        bar = tqdm(total=until, initial=self.step, desc="distill", unit="step", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        smooth = None
        while self.step < until:
            loss = self.train_step()
            losses.append(loss)
            smooth = loss if smooth is None else 0.9 * smooth + 0.1 * loss
            bar.set_postfix(loss=f"{smooth:.4g}", **{k: f"{v:.3g}" for k, v in self.objective.terms.items()})
            bar.update(1)
            if out_dir is not None and (self.step % checkpoint_every == 0 or self.step == until):
                self.save_checkpoint(out_dir)
        bar.close()
        return losses

    # -- files -----------------------------------------------------------------------------------
    def save_checkpoint(self, out_dir: pathlib.Path) -> pathlib.Path:
        from engine.io.atomic import atomic_file
        state = {"step": self.step, "config": self.config.to_json(),
                 "params": {n: p.detach().cpu() for n, p in self.params.items()},
                 "ema": {n: t.cpu() for n, t in self.ema.items()},
                 "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}
        path = pathlib.Path(out_dir) / CHECKPOINT
        with atomic_file(path) as f:
            torch.save(state, f)
        return path

    def load_checkpoint(self, path: pathlib.Path) -> None:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise InputError(f"{path}: cannot read the distillation checkpoint ({type(err).__name__}: {err})") from None
        mine = {k: v for k, v in self.config.to_json().items() if k != "steps"}
        # a setting added after the checkpoint was written holds its default there
        theirs = {**DistillConfig().to_json(), **state["config"]}
        theirs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in theirs.items() if k != "steps"}
        mine = {k: (tuple(v) if isinstance(v, list) else v) for k, v in mine.items()}
        if mine != theirs:
            diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
            raise InputError(f"{path}: was written with other settings {diff} (checkpoint, now); resume with the "
                             "same options or start a new --out")
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["params"][n])
                self.ema[n].copy_(state["ema"][n])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])

    def student_tensors(self) -> dict[str, torch.Tensor]:
        """What the student file holds: the EMA weights (the consistency target, as LCM releases)."""
        with self._ema_weights():
            if self.config.lora_rank:
                from engine.distill.lora import lora_factors
                return lora_factors(self.unet)
            return {k: v.detach().float().cpu().clone() for k, v in self.unet.state_dict().items()}

    def describe(self) -> str:
        n = sum(p.numel() for p in self.params.values())
        return json.dumps({"trainable_parameters": n, **self.config.to_json()})
