"""Inference backends behind one interface (base.Backend): torch, ONNX Runtime, TensorRT."""
