"""Validation metrics: accuracy, per-class precision / recall / F1, a confusion matrix whose cells
know their images, and the mistakes sorted by how confident the model was. numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Mistake:
    path: str
    true: int
    predicted: int
    confidence: float


@dataclass
class Evaluation:
    classes: list[str]
    paths: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray
    novelty: np.ndarray | None = None  # held-out novelty scores of these images (core.trust)
    novelty_threshold: float | None = None

    @property
    def accuracy(self) -> float:
        return float((self.y_true == self.y_pred).mean()) if len(self.y_true) else float("nan")

    def confusion(self) -> np.ndarray:
        k = len(self.classes)
        m = np.zeros((k, k), int)
        np.add.at(m, (self.y_true, self.y_pred), 1)
        return m

    def cell(self, true: int, predicted: int) -> list[str]:
        """The images counted in one confusion-matrix cell."""
        idx = np.nonzero((self.y_true == true) & (self.y_pred == predicted))[0]
        return [self.paths[i] for i in idx]

    def per_class(self) -> list[dict]:
        m = self.confusion()
        rows = []
        for i, name in enumerate(self.classes):
            tp = m[i, i]
            p = tp / m[:, i].sum() if m[:, i].sum() else 0.0
            r = tp / m[i, :].sum() if m[i, :].sum() else 0.0
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            rows.append({"class": name, "precision": float(p), "recall": float(r), "f1": float(f1),
                         "support": int(m[i, :].sum())})
        return rows

    def reliability(self, bins: int = 10) -> dict:
        """Reliability-diagram bins and the expected calibration error (top-1)."""
        from cnndesk.core.trust.scores import reliability

        return reliability(self.probs, self.y_true, bins)

    def flagged_rate(self, threshold: float | None = None) -> float | None:
        """Share of these (in-class) images the novelty detector calls "not one of my classes"."""
        thr = self.novelty_threshold if threshold is None else threshold
        if self.novelty is None or thr is None or not len(self.novelty):
            return None
        return float((np.asarray(self.novelty) > thr).mean())

    def mistakes(self) -> list[Mistake]:
        """Wrong predictions, the most confident first (the ones most worth a look)."""
        out = [Mistake(self.paths[i], int(self.y_true[i]), int(self.y_pred[i]), float(self.probs[i, self.y_pred[i]]))
               for i in np.nonzero(self.y_true != self.y_pred)[0]]
        return sorted(out, key=lambda m: -m.confidence)


def evaluate(paths: list[str], y_true, probs, classes: list[str]) -> Evaluation:
    y_true = np.asarray(y_true, int)
    probs = np.asarray(probs, np.float64)
    y_pred = probs.argmax(1) if len(probs) else np.array([], int)
    return Evaluation(list(classes), list(paths), y_true, y_pred, probs)
