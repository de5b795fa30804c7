"""``cnndesk export MODEL --out DIR``: a bundle folder that gives the app's answers anywhere."""

from __future__ import annotations

import logging

from cnndesk.cli.common import (
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    fail,
    positive_int,
    say,
)

HELP = "export a model as a bundle folder that gives the app's answers anywhere"


def add_arguments(e) -> None:
    from cnndesk.core.export.formats import FORMATS  # a table, no heavy imports

    e.description = ("Write a folder with the model in FORMAT, model.json, a predict.py that needs only "
                     "Pillow, numpy and the runtime (and prints exactly `cnndesk classify --format json`), a README "
                     "and parity.json: the bundle's predict.py checked against the app on the model's validation "
                     "images. Formats: " + "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()))
    e.add_argument("model", metavar="MODEL", help="registry name or model file")
    e.add_argument("--format", choices=tuple(FORMATS), default="onnx", help="default: onnx")
    e.add_argument("--out", "-o", required=True, metavar="DIR", help="the bundle folder to create")
    e.add_argument("--data", metavar="DIR", default=None,
                   help="images to check (and calibrate int8) with, instead of the dataset recorded in the model file")
    e.add_argument("--top-k", "-k", type=positive_int, default=5, metavar="K", help="top-k of the parity check (default 5)")
    e.add_argument("--force", action="store_true", help="replace DIR if it exists")


def run(args) -> int:
    from cnndesk.core.common import system
    from cnndesk.core.common.errors import CnndeskError, ModelError

    if not system.has_torch():  # the lite build: as its Manage Models dialog, before any work
        return fail(f"cnndesk: exporting {system.FULL_ONLY}", EXIT_MODEL)
    from cnndesk.core.export.bundle import check_bundle_out, export_bundle
    from cnndesk.core.export.formats import ExportError
    from cnndesk.core.models.registry import get_spec

    try:
        check_bundle_out(args.out, overwrite=args.force)  # before any work: the bundle is a new folder
        spec = get_spec(args.model)
    except (ModelError, ExportError) as exc:
        return fail(f"cnndesk export: error: {exc}", EXIT_USAGE)
    try:
        report = export_bundle(spec, args.format, args.out, data=args.data, overwrite=args.force, top_k=args.top_k)
    except ExportError as exc:
        return fail(f"cnndesk export: error: {exc}", EXIT_USAGE)
    except CnndeskError as exc:
        return fail(f"cnndesk: export failed: {exc}", EXIT_MODEL)
    except (RuntimeError, OSError, ValueError) as exc:  # the exporter's own errors: one line
        logging.getLogger("cnndesk").debug("export failed", exc_info=True)
        return fail(f"cnndesk: export failed: {type(exc).__name__}: {exc}", EXIT_MODEL)
    say(report.describe())
    return EXIT_OK if report.ok else EXIT_SOME_FAILED
