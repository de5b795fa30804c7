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
    """One row per image; with ``segments`` (videos in the run) ``start``/``end`` columns too, and
    one row per video segment (its label and mean score in label_1/score_1); with ``novelty`` (a
    user model with a novelty detector) ``unknown``/``novelty`` columns."""

    def __init__(self, stream, top_k, novelty=False, segments=False):
        super().__init__(stream, top_k)
        self.novelty = novelty
        self.segments = segments
        self.w = csv.writer(stream, lineterminator="\n")
        header = ["path"] + (["start", "end"] if segments else [])
        for i in range(1, top_k + 1):
            header += [f"label_{i}", f"score_{i}"]
        self.w.writerow(header + (["unknown", "novelty"] if novelty else []) + ["error"])

    def write(self, row):
        if self.segments and row.get("segments"):
            for seg in row["segments"]:
                blank = ["", ""] * (self.top_k - 1)
                unk = [str(seg["unknown"]).lower() if "unknown" in seg else "", ""] if self.novelty else []
                self.w.writerow([row["path"], f"{seg['start']:.3f}", f"{seg['end']:.3f}", seg["label"],
                                 f"{seg['score']:.6f}", *blank, *unk, row["error"] or ""])
            return
        cells = [row["path"]] + (["", ""] if self.segments else [])
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
        if row["error"] and not row.get("segments"):
            self.stream.write(f"{name}\n    error: {row['error']}\n")
            return
        preds = row["predictions"]
        lines = [f"{name}"]
        if row.get("unknown"):
            lines.append(f"    not one of my classes (novelty {row['novelty']:.2f}); closest:")
        if row.get("segments") is not None:  # a video: its timeline
            from cnndesk.core.video import fmt_time

            if row["error"]:
                lines.append(f"    warning: {row['error']}")
            lines += [f"    {fmt_time(s['start'])}-{fmt_time(s['end'])}  {s['label']} ({s['score']:.0%})" for s in row["segments"]]
            preds = []
        for p in preds:
            lines.append(f"    {p['score'] * 100:6.2f}%  {p['label']}")
        self.stream.write("\n".join(lines) + "\n")


FORMATS = {"json": JsonWriter, "csv": CsvWriter, "table": TableWriter}


def writer(fmt: str, stream, top_k: int, novelty: bool = False, segments: bool = False) -> ResultWriter:
    """``novelty``: the rows carry "unknown"/"novelty" (CSV adds those two columns); ``segments``:
    videos are in the run (CSV: start/end columns, one row per segment)."""
    if fmt == "csv":
        return CsvWriter(stream, top_k, novelty=novelty, segments=segments)
    return FORMATS[fmt](stream, top_k)


def export(rows: Iterable[dict], path: str | os.PathLike, fmt: str, top_k: int, novelty: bool = False,
           segments: bool = False) -> int:
    """Write ``rows`` to ``path`` atomically (a failure leaves any old file intact). Returns the
    number of rows written."""
    n = 0
    with atomic_write(path, "w") as fh:
        out = writer(fmt, fh, top_k, novelty, segments)
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
            if r.get("start"):  # a video segment: rows of one video are consecutive
                seg = {"start": float(r["start"]), "end": float(r["end"]), **preds[0]}
                if rows and rows[-1]["path"] == r["path"] and "segments" in rows[-1]:
                    rows[-1]["segments"].append(seg)
                else:
                    rows.append({"path": r["path"], "predictions": [], "error": r.get("error") or None, "segments": [seg]})
                continue
            row = {"path": r["path"], "predictions": preds, "error": r.get("error") or None}
            if r.get("novelty"):
                row["unknown"], row["novelty"] = r.get("unknown") == "true", float(r["novelty"])
            rows.append(row)
    for r in rows:
        if r.get("segments"):
            from cnndesk.core.video import predictions_from_segments

            r["predictions"] = predictions_from_segments(r["segments"], k)
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
    return export(rows, out, fmt, k, segments=any("segments" in r for r in rows))
