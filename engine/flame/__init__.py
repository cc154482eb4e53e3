"""FLAME head model: container, loaders, LBS, synthetic stand-in, camera chain, params file."""
