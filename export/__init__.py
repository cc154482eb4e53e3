"""ONNX export and TensorRT engine builds of the engine's networks."""
