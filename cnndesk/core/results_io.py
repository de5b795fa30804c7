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
    def __init__(self, stream, top_k, novelty=False):
        super().__init__(stream, top_k)
        self.novelty = novelty  # user models with a novelty detector: "unknown", "novelty" columns
        self.w = csv.writer(stream, lineterminator="\n")
        header = ["path"]
        for i in range(1, top_k + 1):
            header += [f"label_{i}", f"score_{i}"]
        self.w.writerow(header + (["unknown", "novelty"] if novelty else []) + ["error"])

    def write(self, row):
        cells = [row["path"]]
        preds = row["predictions"]
        for i in range(self.top_k):
            cells += [preds[i]["label"], f"{preds[i]['score']:.6f}"] if i < len(preds) else ["", ""]
        if self.novelty:
            has = row.get("novelty") is not None
            cells += [str(bool(row.get("unknown"))).lower() if has else "", f"{row['novelty']:.6f}" if has else ""]
        self.w.writerow(cells + [row["error"] or ""])


class TableWriter(ResultWriter):
    def write(self, row):
        name = row["path"]
        if row["error"]:
            self.stream.write(f"{name}\n    error: {row['error']}\n")
            return
        preds = row["predictions"]
        lines = [f"{name}"]
        if row.get("unknown"):
            lines.append(f"    not one of my classes (novelty {row['novelty']:.2f}); closest:")
        for p in preds:
            lines.append(f"    {p['score'] * 100:6.2f}%  {p['label']}")
        self.stream.write("\n".join(lines) + "\n")


FORMATS = {"json": JsonWriter, "csv": CsvWriter, "table": TableWriter}


def writer(fmt: str, stream, top_k: int, novelty: bool = False) -> ResultWriter:
    """``novelty``: the rows carry "unknown"/"novelty" (CSV adds those two columns)."""
    if fmt == "csv":
        return CsvWriter(stream, top_k, novelty)
    return FORMATS[fmt](stream, top_k)


def export(rows: Iterable[dict], path: str | os.PathLike, fmt: str, top_k: int, novelty: bool = False) -> int:
    """Write ``rows`` to ``path`` atomically (a failure leaves any old file intact). Returns the
    number of rows written."""
    n = 0
    with atomic_write(path, "w") as fh:
        out = writer(fmt, fh, top_k, novelty)
        for row in rows:
            out.write(row)
            n += 1
        out.close()
    return n


def read_rows(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Rows of a JSON or CSV results file (as written above) and its top-k."""
    path = str(path)
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as fh:
            rows = json.load(fh)
        return rows, max((len(r["predictions"]) for r in rows), default=1)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        k = sum(1 for c in reader.fieldnames or [] if c.startswith("label_"))
        rows = []
        for r in reader:
            preds = [{"label": r[f"label_{i}"], "score": float(r[f"score_{i}"])}
                     for i in range(1, k + 1) if r.get(f"label_{i}")]
            row = {"path": r["path"], "predictions": preds, "error": r.get("error") or None}
            if r.get("novelty"):
                row["unknown"], row["novelty"] = r.get("unknown") == "true", float(r["novelty"])
            rows.append(row)
    return rows, max(k, 1)


def merge(parts: list[str], out: str | os.PathLike) -> int:
    """Join shard outputs into one file, ordered like an unsharded run of the same folder."""
    from cnndesk.core.pipeline import shard_key

    rows, k = [], 1
    for part in parts:
        got, kk = read_rows(part)
        rows += got
        k = max(k, kk)
    seen = set()
    for r in rows:
        if r["path"] in seen:
            raise ValueError(f"{r['path']} appears in more than one part")
        seen.add(r["path"])
    rows.sort(key=lambda r: shard_key(r["path"]))
    fmt = "json" if str(out).endswith(".json") else "csv"
    return export(rows, out, fmt, k)
