"""How a model runs: the device, the one way to weights and verified ONNX exports (resolve), and the backends (ONNX Runtime, PyTorch, numpy heads)."""
