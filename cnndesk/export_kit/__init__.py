"""Files copied into export bundles (predict.py). Nothing here is imported by the app."""
