"""cnndesk: a desktop app that puts a convolutional neural network in everyone's hands.

Importing this package must stay cheap (no torch, no Qt, no numpy).
"""

__version__ = "0.1.0"
