"""Common ground for every capability: errors, progress and cancel, paths, safe file writes and moves, machine facts. No torch."""
