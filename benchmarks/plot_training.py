"""Plot a `mprt train` run's loss curves (its --work folder's losses.json) as one PNG per stage.

    python -m benchmarks.plot_training --work data/train-work --out benchmarks/results/training_loss.png
"""
from __future__ import annotations

import argparse
import json
import pathlib


# what each stage's logged loss is (engine/training): the autoencoder stages' weighted reconstruction, the
# decoder stage's reconstruction plus edge term, the diffusion stages' v-prediction MSE
YLABELS = {"autoencoder": "weighted MSE + L1 loss", "autoencoder_full": "weighted MSE + L1 loss",
           "decoder": "reconstruction + edge loss"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="the training run's --work folder (holds losses.json)")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    losses = json.loads(pathlib.Path(args.work, "losses.json").read_text())
    stages = [s for s, curve in losses.items() if curve]  # in training order, as `mprt train` writes them
    fig, axes = plt.subplots(1, len(stages), figsize=(4 * len(stages), 3))
    for ax, stage in zip(axes if len(stages) > 1 else [axes], stages):
        steps, values = zip(*losses[stage])
        ax.plot(steps, values)
        ax.set_title(f"{stage.replace('_', ' ')} stage")
        ax.set_xlabel("step")
        ax.set_ylabel(YLABELS.get(stage, "v-prediction MSE"))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
