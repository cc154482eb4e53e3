"""The training recipe: every number that fixes a run (with the seed, it reproduces the weights)."""
from __future__ import annotations

import dataclasses

from engine.networks.config import ModelConfig, tiny_config


@dataclasses.dataclass(frozen=True)
class TrainRecipe:
    seed: int = 0
    # 64 px, not 128: on the 2-core CPU this budget was made for, a 128-px step costs ~4x as much
    # (guidance encoders and attention), and sample count is what a from-scratch model needs.
    size: int = 64
    # Each training clip also over this many new random backgrounds (engine/synthetic/backgrounds.py):
    # with one background per identity, both networks memorised them instead of copying the reference's.
    background_variants: int = 3
    autoencoder_steps: int = 4000
    autoencoder_batch: int = 16
    autoencoder_crop: int = 32  # random crops: a quarter of a 64-px image's cost per sample
    autoencoder_lr: float = 3e-4  # 1e-3 and above stalled near the mean image
    # ... then whole images (what the engine encodes; GroupNorm and attention statistics of a crop differ).
    # 0 in the shipped recipe: 600 steps lifted the held-out autoencoder round trip (19.9 -> 20.4 dB, IoU
    # 0.69 -> 0.74, face colour 7.6 -> 2.7) and `realtime` (17.5 -> 17.8 dB), but the `quality` preset fell
    # (16.8 -> 16.6 dB, IoU 0.68 -> 0.67) with the same image stage: not shipped (see the README).
    autoencoder_full_steps: int = 0
    autoencoder_full_lr: float = 1e-4
    # Then the decoder alone on whole images (encoder frozen: the latents stay as they are), the way SD's
    # ft-MSE decoder was made; engine.training.autoencoder.finetune_decoder has the measurements.
    # 6000, not v6's 1000 (36 min instead of 6; its loss was still falling): on 24 held-out people the
    # autoencoder round trip went 22.95 -> 23.53 dB, fg IoU 0.746 -> 0.797, and the `quality` preset of
    # the same UNet 20.64 -> 20.82 dB, IoU 0.704 -> 0.751 (stripes and checks: more of their edges).
    decoder_steps: int = 6000
    decoder_batch: int = 16
    decoder_lr: float = 1e-4
    # 4000, not v5's 2000: at 2000 the image stage's loss was still falling (0.154 -> 0.142 over its last
    # fifth, under a decaying rate); ~37 min per 2000 steps of 48 frames on 2 cores.
    image_steps: int = 4000
    image_batch: int = 48  # ~0.6 s of every step is fixed overhead on the CPU: big batches amortise it
    image_lr: float = 5e-4
    # Then the same stage again under a second, lower cosine cycle (a warm restart, fresh AdamW moments):
    # it extends a finished run without changing its first part (`mprt train --image-refine-steps N`).
    # 700 steps (15 min) is what the 150-min budget leaves: with the 6000-step decoder, `quality` on 24
    # held-out people 20.82 -> 20.91 dB, face colour error 8.9 -> 8.6, IoU 0.751 -> 0.754. (3000 steps on
    # v6, 67 min: 20.64 -> 20.78 dB, face colour 8.9 -> 8.5; README, "The built-in model".)
    image_refine_steps: int = 700
    image_refine_lr: float = 2.5e-4
    motion_steps: int = 200
    motion_batch: int = 2
    motion_frames: int = 12  # the runtime's context window
    motion_lr: float = 3e-4
    # The CFG scale the model declares (magicportrait.json), which the presets use with it. Not upstream's
    # 3.5: CFG here amplifies only "with vs without the reference", and this small model's two answers
    # differ by more than a converged model's, so 3.5 overshoots. Measured on the shipped model (6 held-out
    # clips, 20 steps; benchmarks/results/quality.md): CFG 3.5 -> 16.7 dB, face colour error 16.3, fg IoU
    # 0.617; 2.0 -> 17.2 dB, 13.1, 0.632; 1.5 -> 17.4 dB, 12.2, 0.635; none -> 17.5 dB, 12.2, 0.630 (and
    # more flicker: 11.7 against 9.6 at 1.5).
    guidance_scale: float = 1.5

    def scaled(self, factor: float) -> "TrainRecipe":
        """The same recipe with every stage's step count times `factor` (tests, quick looks)."""
        return dataclasses.replace(
            self, autoencoder_steps=max(1, round(self.autoencoder_steps * factor)),
            autoencoder_full_steps=max(1, round(self.autoencoder_full_steps * factor)) if self.autoencoder_full_steps else 0,
            decoder_steps=max(1, round(self.decoder_steps * factor)) if self.decoder_steps else 0,
            image_steps=max(1, round(self.image_steps * factor)),
            image_refine_steps=max(1, round(self.image_refine_steps * factor)) if self.image_refine_steps else 0,
            motion_steps=max(1, round(self.motion_steps * factor)))


def model_config(size: int, latent_scale: float, guidance_scale: float = 3.5) -> ModelConfig:
    """The trained model's networks: the tiny config (parity harness sizes) at `size` pixels, with
    8 GroupNorm groups instead of 32 (32 groups of 32 channels normalise each channel alone, so the
    UNet's last norm cannot pass on a latent's mean: the background's colour)."""
    tiny = tiny_config()
    return dataclasses.replace(tiny, unet=dataclasses.replace(tiny.unet, norm_num_groups=8),
                               image_size=size, latent_scale=latent_scale, guidance_scale=guidance_scale)
