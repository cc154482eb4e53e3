"""Few-step consistency distillation of the denoising UNet3D (CFG folded in) and of a tiny decoder."""
