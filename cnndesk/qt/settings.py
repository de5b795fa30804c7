"""Typed access to the app's QSettings (window state, last model and folder, preferences)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from cnndesk.core.models.registry import DEFAULT_MODEL
from cnndesk.core.runtime.devices import DEVICES


class Settings:
    DEFAULTS = {"top_k": 5, "threshold": 30, "device": "auto", "last_model": DEFAULT_MODEL, "last_folder": ""}

    def __init__(self):
        self.q = QSettings("cnndesk", "cnndesk")

    def get(self, key: str):
        default = self.DEFAULTS.get(key)
        value = self.q.value(key, default)
        if isinstance(default, int) and not isinstance(value, int):
            try:
                value = int(value)
            except (TypeError, ValueError):
                value = default
        return value

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    @property
    def top_k(self) -> int:
        return max(1, min(20, self.get("top_k")))

    @property
    def threshold(self) -> float:
        return max(0, min(100, self.get("threshold"))) / 100.0

    @property
    def device(self) -> str:
        d = str(self.get("device"))
        return d if d in DEVICES else "auto"

    # "not one of my classes": per user model, the share of its own kind of images flagged (percent)
    def novelty_rate(self, model: str) -> float:
        try:
            return max(0.0, min(50.0, float(self.q.value(f"novelty_rate/{model}", 5.0))))
        except (TypeError, ValueError):
            return 5.0

    def set_novelty_rate(self, model: str, percent: float) -> None:
        self.q.setValue(f"novelty_rate/{model}", float(percent))
