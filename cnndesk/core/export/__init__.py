"""Exporting models: ONNX/TorchScript files and self-contained bundles with predict.py, checked for parity with the app."""
