"""Guidance maps (depth / normal / render) from FLAME meshes: spec guidance_maps.md §3-4, §7.

Modules: `raster_inputs` (the contract between mesh side and rasterisers), `reference_renderer`
(the CPU reference every fast path is checked against), `quantize`, `folders` (upstream's image
folder layout), `pipeline` (FLAME params -> maps), `demo_motion`. Kept import-light on purpose.
"""
