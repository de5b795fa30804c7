"""``cnndesk models``: the model registry (built-in, zoo, your models; unusable files with the reason)."""

from __future__ import annotations

import io

from cnndesk.cli.common import (
    EXIT_OK,
    say,
    say_json,
)

HELP = "list the available models"


def add_arguments(m) -> None:
    m.description = "List the model registry: built-in, zoo (downloaded on first use) and your trained models."
    m.add_argument("--format", "-f", choices=("table", "json"), default="table")


def run(args) -> int:
    from cnndesk.core.common.safeio import display, path_text
    from cnndesk.core.models.registry import BUILTIN, user_model_entries

    usable, unusable = user_model_entries()
    rows = []
    for spec in [s for s in (*BUILTIN, *usable) if s.runnable]:  # lite: only what it can run
        rows.append(
            {
                "name": spec.name,
                "title": spec.title,
                "source": spec.source,
                "classes": spec.num_classes,
                "size_mb": round(spec.weights.size_mb, 1),
                "input_size": spec.input_size,
                "downloaded": spec.available,
                "path": path_text(spec.weights.local_path() or (spec.weights.cache_path() if spec.weights.kind == "url" else "")),
                "usable": True,
            }
        )
    for path, reason in unusable:  # listed with the reason, never fatal
        rows.append({"name": path_text(path.stem), "title": "", "source": "user", "classes": 0, "size_mb": 0.0,
                     "input_size": 0, "downloaded": True, "path": path_text(path), "usable": False,
                     "reason": path_text(reason)})
    if args.format == "json":
        say_json(rows, indent=2)
        return EXIT_OK
    buf = io.StringIO()
    header = ("NAME", "SOURCE", "CLASSES", "SIZE", "DOWNLOADED", "DESCRIPTION")
    table = [header] + [
        (display(r["name"], 60), r["source"], str(r["classes"]), f"{r['size_mb']:.0f} MB",
         "yes" if r["downloaded"] else "no", display(r["title"], 120))
        if r["usable"] else (display(r["name"], 60), "user", "-", "-", "-", "UNUSABLE: " + display(r["reason"], 160))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        buf.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    say(buf.getvalue().rstrip("\n"))
    return EXIT_OK
