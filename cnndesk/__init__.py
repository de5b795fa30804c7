"""cnndesk: a desktop app that puts a convolutional neural network in everyone's hands.

Importing this package must stay cheap (no torch, no Qt, no numpy).
"""

import os as _os

__version__ = "0.1.0"

# ONNX Runtime's telemetry off, in every entry point (command line, app, bundles, tests): on its
# first inference session ONNX Runtime 1.2x+ writes a device id and an events database to
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and would send usage events to Microsoft. It reads
# the switch once, when it is imported, so it is set here, before any cnndesk module can import it
# (ORT_DISABLE_TELEMETRY: the wheels of 1.3x; ORT_TELEMETRY_DISABLED: the name upstream settled
# on). core.onnx_cache.make_session also calls disable_telemetry_events() (the Windows switch).
# docs/threat-model.md, "ONNX Runtime telemetry"; tests/core/test_no_telemetry.py.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
_os.environ["ORT_TELEMETRY_DISABLED"] = "1"
