"""PyTorch networks: per-family adapters, building a network from its weights, multi-stage feature taps, head surgery. Imports torch."""
