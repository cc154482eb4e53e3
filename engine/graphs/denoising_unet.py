"""denoising_unet — UNet3D with motion modules on a latent window -> v-prediction.
  in   sample                  (batch, 4, frames, h, w) float  noisy latents
       timestep                (batch, frames)    float32  one timestep per frame (0..999), fp32 in both
                                                           precisions (fp16 is exact to 2048, but the
                                                           sinusoid is computed in fp32 anyway)
       text_embedding          (1, 77, D)         float    shared by both CFG halves (networks.md text)
       guidance                (frames, C0, h, w) float    guidance_encoder output rows of the window's
                                                           frames; shared by all samples of the batch
       ref_k_XX / ref_v_XX     (1, L_i, C_i)      float    reference_kv outputs (reference mode "kv")
         or ref_feature_XX     (1, L_i, C_i)      float    reference_unet outputs (reference mode "features")
       use_reference           (batch,)           float32  1.0: sample attends to the reference tokens
                                                           (CFG cond half), 0.0: it does not (uncond half).
                                                           A float, not bool: TensorRT handles float
                                                           inputs in every version; the graph tests > 0.5.
  out  v                       (batch, 4, frames, h, w) float
"batch" is 1 without CFG, 2 under CFG ([uncond ; cond], networks.md (b).6).
"""
from __future__ import annotations

from engine.graph_specs import (REFERENCE_TRANSFORMERS, GraphSpec, TensorSpec, float_dtype, latent_hw,
                                reference_specs, text_spec)

NAME, ORDER, SOURCE = "denoising_unet", 30, "model"
SAMPLE, TIMESTEP, TEXT, GUIDANCE, USE_REFERENCE = "sample", "timestep", "text_embedding", "guidance", "use_reference"
V = "v"


def spec(config, plan, precision) -> GraphSpec:
    fl, (h, w) = float_dtype(precision), latent_hw(config, plan)
    c0 = config.unet.block_out_channels[0]
    ins = (TensorSpec(SAMPLE, fl, ("batch", 4, "frames", h, w)),
           TensorSpec(TIMESTEP, "float32", ("batch", "frames"), "timestep"),
           text_spec(config, precision),
           TensorSpec(GUIDANCE, fl, ("frames", c0, h, w)),
           *reference_specs(config, plan, precision),
           TensorSpec(USE_REFERENCE, "float32", ("batch",), "use_reference"))
    return GraphSpec(NAME, precision, ins, (TensorSpec(V, fl, ("batch", 4, "frames", h, w)),),
                     {"batch": plan.batch, "frames": plan.frames})


def parts(model) -> dict:
    return {"unet": model.denoising_unet}


def forward(parts, sample, timestep, text_embedding, guidance, *rest):
    # (F, C0, h, w) rows -> (1, C0, F, h, w): the module broadcasts it over the batch.
    return run_unet(parts["unet"], sample, timestep, text_embedding, guidance.transpose(0, 1).unsqueeze(0), *rest)


def run_unet(unet, sample, timestep, text_embedding, guidance, *rest):
    """The UNet on graph inputs, guidance already (1 or B, C0, F, h, w); also denoising_unet_streams'."""
    *refs, use_reference = rest
    if len(refs) == 2 * REFERENCE_TRANSFORMERS:  # K/V pairs (reference mode "kv")
        kv = [(refs[2 * i], refs[2 * i + 1]) for i in range(len(refs) // 2)]
    else:
        kv = unet.project_reference(list(refs))
    v = unet(sample, timestep, text_embedding, guidance, kv, use_reference > 0.5)
    # Restate v's shape with the channel count as a constant: the module's reshape(b, f, -1, h, w)
    # leaves TensorRT unable to infer that dim 1 is 4.
    b, _, f, h, w = sample.shape
    return v.reshape(b, unet.config.out_channels, f, h, w)
