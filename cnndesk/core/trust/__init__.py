"""Honest scores: calibrated confidence and novelty (not one of my classes). numpy only; vendored into export bundles."""
