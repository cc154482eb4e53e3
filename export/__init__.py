"""ONNX export and TensorRT engine build of MagicPortrait's networks (`mprt export`, `mprt build`).

The graphs' I/O contract lives in engine/graph_specs.py; this package adapts the torch modules to it
(wrappers), writes and checks the ONNX files (onnx_export, parity) and builds engines (trt_build).
"""
