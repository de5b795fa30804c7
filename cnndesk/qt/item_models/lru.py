"""The bounded image cache of the Qt layer's item models (folder table thumbnails, gallery icons
and display images): least recently used entries are evicted, and a model makes an evicted image
again on a worker when it is painted or shown again. UI thread only."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    def __init__(self, max_items: int):
        self._data: OrderedDict[K, V] = OrderedDict()
        self._max = max(1, int(max_items))

    @property
    def max_items(self) -> int:
        return self._max

    @max_items.setter
    def max_items(self, n: int) -> None:
        self._max = max(1, int(n))
        self._trim()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        self._trim()

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def _trim(self) -> None:
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
