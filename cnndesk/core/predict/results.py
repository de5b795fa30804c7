"""Writing classification results as JSON, CSV or a text table, streamed row by row (memory stays
flat for 100,000 files). Rows are ``FileResult.as_dict()``:
``{"path": str, "predictions": [{"label": str, "score": float}, ...], "error": str | None}``.
Used by the CLI (to stdout) and the app's exports (to files written atomically)."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable

from cnndesk.core.common.safeio import display, path_text, safe_write

# OWASP "CSV injection": a text cell starting with one of these is a formula to spreadsheets
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will show as text: formula-like cells get a leading quote (and so
    does a cell that already starts with quotes before a formula character, so that reading it
    back is exact)."""
    return "'" + cell if cell.lstrip("'").startswith(FORMULA_START) else cell


def unneutralise(cell: str) -> str:
    """The cell :func:`neutralise` was given (a cell without its quote is returned as it is)."""
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START) else cell


def _score(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def clean_row(row: dict) -> dict:
    """A result row as valid UTF-8 text with finite scores (non-finite ones become None). The
    optional fields keep their place: "unknown"/"novelty" (user models), "segments", "duration",
    "stopped_at" (videos)."""
    out = {
        "path": path_text(row["path"]),
        "predictions": [{"label": path_text(str(p["label"])), "score": _score(p["score"])}
                        for p in row.get("predictions") or []],
        "error": None if row.get("error") is None else path_text(str(row["error"])),
    }
    for key, value in row.items():
        if key in out:
            continue
        if key == "segments":
            value = [{**seg, "label": path_text(str(seg["label"])), "score": _score(seg["score"])} for seg in value]
        elif key == "unknown":
            value = bool(value)
        elif isinstance(value, float):
            value = _score(value)
        out[key] = value
    return out


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
        text = json.dumps(clean_row(row), ensure_ascii=False, allow_nan=False)
        self.stream.write(("," if self.n else "") + "\n  " + text)
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
        # csv quotes a bare CR only when it is part of the line terminator: quote such rows fully
        self.w_all = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
        header = ["path"] + (["start", "end"] if segments else [])
        for i in range(1, top_k + 1):
            header += [f"label_{i}", f"score_{i}"]
        self.w.writerow(header + (["unknown", "novelty"] if novelty else []) + ["error"])

    def write(self, row):
        row = clean_row(row)
        if self.segments and row.get("segments"):
            for seg in row["segments"]:
                blank = ["", ""] * (self.top_k - 1)
                unk = [str(seg["unknown"]).lower() if "unknown" in seg else "", ""] if self.novelty else []
                score = "" if seg["score"] is None else f"{seg['score']:.6f}"
                self._row([neutralise(row["path"]), f"{seg['start']:.3f}", f"{seg['end']:.3f}", neutralise(seg["label"]),
                           score, *blank, *unk, neutralise(row["error"] or "")])
            return
        cells = [neutralise(row["path"])] + (["", ""] if self.segments else [])
        preds = row["predictions"]
        for i in range(self.top_k):
            if i < len(preds):
                score = preds[i]["score"]
                cells += [neutralise(preds[i]["label"]), "" if score is None else f"{score:.6f}"]
            else:
                cells += ["", ""]
        if self.novelty:
            has = row.get("novelty") is not None
            cells += [str(bool(row.get("unknown"))).lower() if has else "", f"{row['novelty']:.6f}" if has else ""]
        cells.append(neutralise(row["error"] or ""))
        self._row(cells)

    def _row(self, cells) -> None:
        (self.w_all if any("\r" in c for c in cells) else self.w).writerow(cells)


class TableWriter(ResultWriter):
    def write(self, row):
        row = clean_row(row)
        name = display(row["path"], 1000)
        if row["error"] and not row.get("segments"):
            self.stream.write(f"{name}\n    error: {display(row['error'], 1000)}\n")
            return
        preds = row["predictions"]
        lines = [f"{name}"]
        if row.get("unknown"):
            lines.append(f"    not one of my classes (novelty {row['novelty']:.2f}); closest:")
        if row.get("segments") is not None:  # a video: its timeline
            from cnndesk.core.predict.video import fmt_time

            if row["error"]:
                lines.append(f"    warning: {display(row['error'], 1000)}")
            lines += [f"    {fmt_time(s['start'])}-{fmt_time(s['end'])}  {display(s['label'])} "
                      f"({'?' if s['score'] is None else format(s['score'], '.0%')})" for s in row["segments"]]
            preds = []
        for p in preds:
            score = "     ?" if p["score"] is None else f"{p['score'] * 100:6.2f}"
            lines.append(f"    {score}%  {display(p['label'])}")
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
    with safe_write(path, "w", make_parents=True, newline="") as fh:  # csv wants newline=""
        out = writer(fmt, fh, top_k, novelty, segments)
        for row in rows:
            out.write(row)
            n += 1
        out.close()
    return n


def read_rows(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Rows of a JSON or CSV results file (as written above) and its top-k.
    Raises ValueError naming the file when it is not such a file."""
    path = str(path)
    try:
        from cnndesk.core.common.safeio import require_regular_file

        require_regular_file(path, "results file")
        if path.endswith(".json"):
            return _read_json(path)
        return _read_csv(path)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, csv.Error, RecursionError) as exc:
        reason = f"missing column {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        raise ValueError(f"{path_text(path)}: not a cnndesk results file ({display(reason, 120)})") from None
    except OSError as exc:
        from cnndesk.core.common.safeio import describe_oserror

        raise ValueError(f"{path_text(path)}: {describe_oserror(exc)}") from None
    except Exception as exc:  # CnndeskError from require_regular_file
        raise ValueError(str(exc)) from None


def _read_json(path: str) -> tuple[list[dict], int]:
    from cnndesk.core.models.schema import check_json_depth

    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    check_json_depth(text, 8)
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError("expected a list of results")
    out = []
    for r in rows:
        if not isinstance(r, dict) or not isinstance(r["path"], str):
            raise ValueError("a result without a path")
        preds = r.get("predictions") or []
        if not isinstance(preds, list):
            raise ValueError("predictions is not a list")
        clean = []
        for p in preds:
            if not isinstance(p, dict) or not isinstance(p["label"], str):
                raise ValueError("a prediction without a label")
            if p["score"] is not None and (isinstance(p["score"], bool) or not isinstance(p["score"], (int, float))):
                raise ValueError("a score that is not a number")
            clean.append({"label": p["label"], "score": p["score"]})
        error = r.get("error")
        if error is not None and not isinstance(error, str):
            raise ValueError("an error that is not text")
        row = {"path": r["path"], "predictions": clean, "error": error}
        if isinstance(r.get("unknown"), bool) and isinstance(r.get("novelty"), (int, float)):
            row["unknown"], row["novelty"] = r["unknown"], float(r["novelty"])  # user models
        segs = r.get("segments")
        if isinstance(segs, list):  # a video's timeline
            for seg in segs:
                if not (isinstance(seg, dict) and isinstance(seg.get("label"), str)
                        and all(isinstance(seg.get(k), (int, float)) and not isinstance(seg.get(k), bool)
                                for k in ("start", "end", "score"))):
                    raise ValueError("a video segment without start, end, label and score")
            row["segments"] = [{k: seg[k] for k in ("start", "end", "label", "score", "unknown") if k in seg}
                               for seg in segs]
            for key in ("duration", "stopped_at"):
                if isinstance(r.get(key), (int, float)):
                    row[key] = r[key]
        out.append(row)
    return out, max((len(r["predictions"]) for r in out), default=1)


def _read_csv(path: str) -> tuple[list[dict], int]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "path" not in fields:
            raise ValueError("no 'path' column")
        k = sum(1 for c in fields if c.startswith("label_"))
        rows = []
        for r in reader:
            preds = []
            for i in range(1, k + 1):
                label = r.get(f"label_{i}")
                if label:
                    raw = r.get(f"score_{i}") or ""
                    score = float(raw) if raw else None
                    preds.append({"label": unneutralise(label), "score": score})
            if r["path"] is None:
                raise ValueError("a short row")
            path, error = unneutralise(r["path"]), unneutralise(r.get("error") or "") or None
            if r.get("start"):  # a video segment: rows of one video are consecutive
                seg = {"start": float(r["start"]), "end": float(r["end"]), **preds[0]}
                if r.get("unknown") in ("true", "false"):
                    seg["unknown"] = r["unknown"] == "true"
                if rows and rows[-1]["path"] == path and "segments" in rows[-1]:
                    rows[-1]["segments"].append(seg)
                else:
                    rows.append({"path": path, "predictions": [], "error": error, "segments": [seg]})
                continue
            row = {"path": path, "predictions": preds, "error": error}
            if r.get("novelty"):
                row["unknown"], row["novelty"] = r.get("unknown") == "true", float(r["novelty"])
            rows.append(row)
    for r in rows:
        if r.get("segments"):
            from cnndesk.core.predict.video import predictions_from_segments

            r["predictions"] = predictions_from_segments(r["segments"], k)
    return rows, max(k, 1)


def merge(parts: list[str], out: str | os.PathLike) -> int:
    """Join shard outputs into one file, ordered like an unsharded run of the same folder."""
    from cnndesk.core.predict.stream import shard_key

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
    return export(rows, out, fmt, k, novelty=any("novelty" in r for r in rows),
                  segments=any("segments" in r for r in rows))
