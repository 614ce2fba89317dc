"""Inference engines: one interface, TensorRT and ONNX Runtime backends, model adapters."""
