"""The Qt-free core of cnndesk.

Nothing under ``cnndesk.core`` may import PySide6 (a test enforces it), and the classification path
must not import torch when a cached ONNX model can be used. Submodules are imported explicitly by
callers; this package file stays empty so that importing it costs nothing.
"""
