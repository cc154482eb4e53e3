"""denoising_unet_streams — the denoising UNet3D for several streams in one call (cross-session batching).

The same network as denoising_unet; every input carries the sample axis, so each sample brings its own
guidance rows, reference K/V (its identity) and text embedding:
  in   sample                  (streams, 4, frames, h, w) float  noisy latents
       timestep                (streams, frames)    float32  one timestep per frame
       text_embedding          (streams, 77, D)     float    each sample's (the same text for every one)
       guidance                (streams, frames, C0, h, w) float  guidance_encoder rows of each sample
       ref_k_XX / ref_v_XX     (streams, L_i, C_i)  float    each sample's identity (reference mode "kv")
         or ref_feature_XX     (streams, L_i, C_i)  float    (reference mode "features")
       use_reference           (streams,)           float32  1.0: attend to its reference (CFG cond row)
  out  v                       (streams, 4, frames, h, w) float
Everything leads with "streams", so a Triton model of this graph batches requests along it by itself.
Optional: exported when asked for (`mprt export --streams MIN:OPT:MAX`); the graph backends' batched
UNet calls (Backend.denoise_batch) use it when present, else run the streams one by one.
"""
from __future__ import annotations

from engine.graph_specs import GraphSpec, TensorSpec, float_dtype, latent_hw, reference_specs, text_spec
from engine.graphs import denoising_unet

NAME, ORDER, SOURCE = "denoising_unet_streams", 31, "model"
SAMPLE, TIMESTEP, TEXT, GUIDANCE, USE_REFERENCE, V = (denoising_unet.SAMPLE, denoising_unet.TIMESTEP,
                                                      denoising_unet.TEXT, denoising_unet.GUIDANCE,
                                                      denoising_unet.USE_REFERENCE, denoising_unet.V)
AXIS = "streams"


def wanted(plan) -> bool:
    return NAME in plan.extra_graphs


def spec(config, plan, precision) -> GraphSpec:
    fl, (h, w) = float_dtype(precision), latent_hw(config, plan)
    c0 = config.unet.block_out_channels[0]
    ins = (TensorSpec(SAMPLE, fl, (AXIS, 4, "frames", h, w)),
           TensorSpec(TIMESTEP, "float32", (AXIS, "frames"), "timestep"),
           text_spec(config, precision, lead=AXIS),
           TensorSpec(GUIDANCE, fl, (AXIS, "frames", c0, h, w)),
           *reference_specs(config, plan, precision, lead=AXIS),
           TensorSpec(USE_REFERENCE, "float32", (AXIS,), "use_reference"))
    return GraphSpec(NAME, precision, ins, (TensorSpec(V, fl, (AXIS, 4, "frames", h, w)),),
                     {AXIS: plan.streams, "frames": plan.frames})


def parts(model) -> dict:
    return denoising_unet.parts(model)


def forward(parts, sample, timestep, text_embedding, guidance, *rest):
    # (S, F, C0, h, w) rows -> (S, C0, F, h, w): the module takes per-sample guidance, K/V and text as
    # readily as shared ones.
    return denoising_unet.run_unet(parts["unet"], sample, timestep, text_embedding, guidance.transpose(1, 2), *rest)
