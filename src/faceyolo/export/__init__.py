"""Export to ONNX (decoded, raw heads, NMS in the graph, INT8) and TorchScript; ONNX runs in inference/."""
