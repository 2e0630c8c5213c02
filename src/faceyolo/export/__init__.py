"""Export to ONNX and TorchScript, and the PyTorch-free ONNX Runtime backend."""
