"""Writing classification results as JSON, CSV or a text table, streamed row by row (memory stays
flat for 100,000 files). Rows are ``FileResult.as_dict()``:
``{"path": str, "predictions": [{"label": str, "score": float}, ...], "error": str | None}``.
Used by the CLI (to stdout) and the app's exports (to files written atomically)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable

from cnndesk.core.paths import atomic_write


class ResultWriter:
    """Streams results: memory stays flat for 100,000 files, JSON included."""

    def __init__(self, stream, top_k):
        self.stream, self.top_k = stream, top_k

    def close(self):
        self.stream.flush()


class JsonWriter(ResultWriter):
    def __init__(self, stream, top_k):
        super().__init__(stream, top_k)
        self.n = 0
        stream.write("[")

    def write(self, row):
        self.stream.write(("," if self.n else "") + "\n  " + json.dumps(row, ensure_ascii=False))
        self.n += 1

    def close(self):
        self.stream.write("\n]\n" if self.n else "]\n")
        super().close()


class CsvWriter(ResultWriter):
    def __init__(self, stream, top_k):
        super().__init__(stream, top_k)
        self.w = csv.writer(stream, lineterminator="\n")
        header = ["path"]
        for i in range(1, top_k + 1):
            header += [f"label_{i}", f"score_{i}"]
        self.w.writerow(header + ["error"])

    def write(self, row):
        cells = [row["path"]]
        preds = row["predictions"]
        for i in range(self.top_k):
            cells += [preds[i]["label"], f"{preds[i]['score']:.6f}"] if i < len(preds) else ["", ""]
        self.w.writerow(cells + [row["error"] or ""])


class TableWriter(ResultWriter):
    def write(self, row):
        name = row["path"]
        if row["error"]:
            self.stream.write(f"{name}\n    error: {row['error']}\n")
            return
        preds = row["predictions"]
        lines = [f"{name}"]
        for p in preds:
            lines.append(f"    {p['score'] * 100:6.2f}%  {p['label']}")
        self.stream.write("\n".join(lines) + "\n")


FORMATS = {"json": JsonWriter, "csv": CsvWriter, "table": TableWriter}


def writer(fmt: str, stream, top_k: int) -> ResultWriter:
    return FORMATS[fmt](stream, top_k)


def export(rows: Iterable[dict], path: str | os.PathLike, fmt: str, top_k: int) -> int:
    """Write ``rows`` to ``path`` atomically (a failure leaves any old file intact). Returns the
    number of rows written."""
    n = 0
    with atomic_write(path, "w") as fh:
        out = writer(fmt, fh, top_k)
        for row in rows:
            out.write(row)
            n += 1
        out.close()
    return n
