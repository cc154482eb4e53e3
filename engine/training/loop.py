"""A resumable training loop: progress bar with loss and ETA, checkpoints, seeded RNG."""
from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from engine.io.atomic import atomic_file


@dataclasses.dataclass
class StageState:
    """What a stage needs to resume exactly: modules, optimiser, step, RNG states, loss history."""

    name: str
    modules: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    step: int = 0
    losses: list = dataclasses.field(default_factory=list)  # (step, mean loss) every log interval
    seconds: float = 0.0  # wall time spent in this stage, summed over resumed runs
    rng: np.random.Generator = dataclasses.field(default_factory=np.random.default_rng)
    # The stages (name:steps@lr) whose results this stage starts from, in order: a checkpoint made after
    # other ones (a stage since added, removed or lengthened) holds weights this run would not have made.
    after: tuple[str, ...] = ()

    def save(self, path: pathlib.Path, done: bool) -> None:
        blob = {"name": self.name, "step": self.step, "done": done, "losses": self.losses, "seconds": self.seconds,
                "after": list(self.after),
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizer": self.optimizer.state_dict(), "numpy_rng": self.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as fh:
            torch.save(blob, fh)

    @staticmethod
    def peek(path: pathlib.Path) -> tuple[int, tuple[str, ...] | None]:
        """A checkpoint's step and the `after` it was saved with (None: saved before that was recorded)."""
        blob = torch.load(str(path), map_location="cpu", weights_only=False)  # our own file
        return int(blob["step"]), (tuple(blob["after"]) if "after" in blob else None)

    @staticmethod
    def read_record(path: pathlib.Path) -> dict:
        """A finished stage's losses and wall time (empty when the stage never ran)."""
        if not path.exists():
            return {"losses": [], "seconds": 0.0, "steps": 0}
        blob = torch.load(str(path), map_location="cpu", weights_only=False)  # our own file
        return {"losses": blob["losses"], "seconds": blob.get("seconds", 0.0), "steps": blob["step"]}

    def load(self, path: pathlib.Path) -> bool:
        """Restore from `path` if it exists; returns whether the stage had finished."""
        if not path.exists():
            return False
        blob = torch.load(str(path), map_location="cpu", weights_only=False)  # our own file
        for key, module in self.modules.items():
            module.load_state_dict(blob["modules"][key])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.step, self.losses, self.seconds = blob["step"], blob["losses"], blob.get("seconds", 0.0)
        self.rng.bit_generator.state = blob["numpy_rng"]
        torch.set_rng_state(blob["torch_rng"])
        return bool(blob["done"])


def run_stage(state: StageState, steps: int, step_fn: Callable[[StageState], float], checkpoint: pathlib.Path,
              lr_at: Callable[[int], float] | None = None, save_every: int = 200, log_every: int = 25,
              start_over: bool = False) -> bool:
    """Run `step_fn` until `steps`, resuming from `checkpoint`; one progress bar with loss and ETA.
    start_over: ignore the checkpoint (it was trained on top of weights an earlier stage has since changed).
    A checkpoint recorded after other stages than `state.after`, or past `steps`, is ignored too (it holds
    weights this run would not make); one short of `steps` is continued (a lengthened stage).
    Returns whether this call trained any step."""
    done_steps, lineage = StageState.peek(checkpoint) if checkpoint.exists() else (0, None)
    if start_over and checkpoint.exists():
        print(f"{state.name}: starting over ({checkpoint} was trained before an earlier stage changed)")
    elif lineage is not None and lineage != tuple(state.after):
        print(f"{state.name}: starting over ({checkpoint} was trained after {', '.join(lineage) or 'nothing'}; "
              f"this run's stages before it: {', '.join(state.after) or 'none'})")
    elif done_steps > steps:
        print(f"{state.name}: starting over ({checkpoint} holds {done_steps} steps, this run's stage {steps})")
    elif state.load(checkpoint) and state.step >= steps:
        print(f"{state.name}: done earlier ({state.step} steps), resumed from {checkpoint}")
        return False
    bar = tqdm(total=steps, initial=state.step, desc=state.name, unit="step", dynamic_ncols=True,
               mininterval=2.0)
    window: list[float] = []
    start = time.time()
    resumed_seconds = state.seconds
    while state.step < steps:
        if lr_at is not None:
            for group in state.optimizer.param_groups:
                group["lr"] = lr_at(state.step)
        loss = step_fn(state)
        if not np.isfinite(loss):
            raise FloatingPointError(f"{state.name}: loss became {loss} at step {state.step}")
        window.append(loss)
        state.step += 1
        bar.update(1)
        if state.step % log_every == 0 or state.step == steps:
            state.losses.append((state.step, float(np.mean(window))))
            bar.set_postfix(loss=f"{np.mean(window):.4f}")
            window = []
        state.seconds = resumed_seconds + time.time() - start
        if state.step % save_every == 0:
            state.save(checkpoint, done=False)
    bar.close()
    state.save(checkpoint, done=True)
    print(f"{state.name}: {steps} steps, last loss {state.losses[-1][1]:.4f}, {time.time() - start:.0f} s")
    return True


def cosine_lr(peak: float, steps: int, warmup: int = 100, floor: float = 0.1) -> Callable[[int], float]:
    def lr(step: int) -> float:
        if step < warmup:
            return peak * (step + 1) / warmup
        t = (step - warmup) / max(steps - warmup, 1)
        return peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * min(t, 1.0))))
    return lr
