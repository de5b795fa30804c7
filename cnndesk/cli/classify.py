"""``cnndesk classify`` (images, folders, videos; sharded runs) and ``cnndesk merge`` (joins the parts)."""

from __future__ import annotations

import contextlib
import os
import sys

from cnndesk.cli.common import (
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    ModelUnavailable,
    ProgressBar,
    StatusLine,
    UsageError,
    add_device,
    default_model,
    fail,
    positive_float,
    positive_int,
    say,
    shard,
)

CLASSIFY_HELP = "classify image files or folders and print the results"
MERGE_HELP = "join the CSV or JSON parts of a sharded classify run"


def add_classify_arguments(c) -> None:
    from cnndesk.core.runtime.backends import BACKENDS

    c.description = ("Classify image files or folders. Prints one result per file; a file that "
                     "cannot be read is reported with the reason and the others go on.")
    c.epilog = ("Exit codes: 0 every input classified, 1 some inputs failed, 2 usage error, "
                "3 model unavailable (e.g. needs a download and there is no network).")
    c.add_argument("paths", nargs="+", metavar="PATH", help="image or video files and/or folders")
    c.add_argument("--model", "-m", metavar="NAME|FILE", help=f"registry name (see `cnndesk models`) or a model file; default: {default_model()}")
    c.add_argument("--top-k", "-k", type=positive_int, default=5, metavar="K", help="how many classes per image (default 5)")
    c.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table", help="output format (default table)")
    add_device(c, os.environ.get("CNNDESK_DEVICE", "auto"), "where the model runs (default auto: CUDA, then MPS, then CPU)")
    c.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    c.add_argument("--batch-size", type=positive_int, default=None, metavar="N", help="images per model call (default: 2 on the CPU, 32 on a GPU)")
    c.add_argument("--backend", choices=BACKENDS, default="auto", help="CPU runtime (default auto: ONNX Runtime, PyTorch as fallback)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    c.add_argument("--shard", metavar="I/N", type=shard, default=None, help="classify only shard I of N (0-based; deterministic, for Slurm arrays / Kubernetes indexed jobs); join the parts with `cnndesk merge`")
    c.add_argument("--engine", choices=("local", "ray"), default="local", help="ray: classify with Ray Data on a Ray cluster (pip install 'cnndesk[cluster]')")
    c.add_argument("--out", "-o", metavar="FILE", default=None, help="write results to FILE (.csv, .json or, with --engine ray, .parquet) instead of stdout")
    c.add_argument("--every", type=positive_float, default=None, metavar="SECONDS", help="videos: classify one frame every SECONDS (default 0.5); boundaries are refined between samples")
    c.add_argument("--force", action="store_true", help="replace --out if it exists")


def add_merge_arguments(g) -> None:
    g.description = "Join the outputs of `cnndesk classify --shard I/N` runs into one file, in the order an unsharded run prints."
    g.add_argument("parts", nargs="+", metavar="PART")
    g.add_argument("--out", "-o", required=True, metavar="FILE", help="the merged file (.csv or .json)")
    g.add_argument("--force", action="store_true")


FEW_FILES = 16


def _load_classifier(args, n_files: int):
    from cnndesk.core.common import system
    from cnndesk.core.common.errors import DeviceUnavailableError, ModelError, NetworkRequiredError
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.classifier import Classifier

    try:
        spec = get_spec(args.model)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    # One image: all cores on the model. Many: the decoders need the cores, the model gets one.
    threads = 1 if n_files > (args.batch_size or 2) else system.physical_cores()
    progress = None
    if not args.quiet and sys.stderr.isatty():
        progress = StatusLine()
    try:
        # a few images before the model's export exists: PyTorch answers at once and the export is
        # built after (the process finishes it before exiting, so the next call is fast); a big
        # folder waits for the export, which is about 5x faster per image
        return Classifier(spec, device=args.device, backend=args.backend, threads=threads, progress=progress,
                          background_export=n_files <= FEW_FILES)
    except NetworkRequiredError as exc:
        raise ModelUnavailable(str(exc)) from None
    except ModelError as exc:
        if isinstance(exc, DeviceUnavailableError) and args.device != "auto":
            raise UsageError(str(exc)) from None
        raise ModelUnavailable(str(exc)) from None
    finally:
        if progress is not None:
            progress.clear()


def _decode_early(args, files: list[str]):
    """Start decoding the first images with the model's preprocessing while the model loads
    (a folder only; None when the model's entry cannot be read: loading then says why)."""
    if len(files) < 4:
        return None
    from cnndesk.core.common import system
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict.prefetch import EarlyDecode

    try:
        spec = get_spec(args.model)
    except Exception:
        return None
    workers = system.physical_cores()
    return EarlyDecode(files, spec.preprocess, workers, count=(args.batch_size or 2) + 4 * workers)


def run_classify(args) -> int:
    from cnndesk.core.common.safeio import check_output, display, safe_write
    from cnndesk.core.predict import results as results_io
    from cnndesk.core.predict.stream import classify_stream, expand_paths

    if args.out:  # before any work: a missing folder, a folder, an existing file, read-only
        check_output(args.out, force=args.force)
    if args.engine == "ray":
        from cnndesk.cluster import ray_classify

        return ray_classify.main(args)
    skipped: list[tuple[str, str]] = []
    files = expand_paths(args.paths, recursive=args.recursive, videos=True, skipped=skipped)
    for folder, reason in skipped:
        say(f"cnndesk: warning: skipped the folder {display(folder)} ({reason})", sys.stderr)
    if args.shard is not None:
        from cnndesk.core.predict.stream import select_shard

        files = select_shard(files, args.paths, *args.shard)
        if not files:
            say(f"cnndesk: shard {args.shard[0]}/{args.shard[1]} has no files", sys.stderr)
    if not files and args.shard is None:
        hint = "" if args.recursive else " (use --recursive to look in subfolders)"
        return fail(f"cnndesk: no images or videos found in {', '.join(map(display, args.paths))}{hint}", EXIT_SOME_FAILED)
    from cnndesk.core.predict import media, video

    has_video = any(media.is_media_path(f) for f in files)
    early = None if has_video else _decode_early(args, files)  # while the model loads
    try:  # a video: the decoder thread takes one core, the model gets one
        clf = _load_classifier(args, len(files) + (1 << 20) * has_video)
    except (UsageError, ModelUnavailable) as exc:
        if early is not None:
            early.close()
        if isinstance(exc, UsageError):
            return fail(f"cnndesk classify: error: {exc}", EXIT_USAGE)
        return fail(f"cnndesk: {exc}", EXIT_MODEL)

    args.top_k = min(args.top_k, len(clf.labels))  # -k 300000000 would size the CSV header by it
    fmt = args.format
    if args.out:
        fmt = "json" if args.out.endswith(".json") else "csv" if args.out.endswith(".csv") else fmt
        target = safe_write(args.out, "w", overwrite=args.force, newline="")  # exclusive temp, renamed at the end
    else:
        target = contextlib.nullcontext(sys.stdout)
    failed = 0
    show_bar = len(files) > 1 and not args.quiet and sys.stderr.isatty()
    bar = ProgressBar(len(files)) if show_bar and not has_video else None
    with target as stream:
        out = results_io.writer(fmt, stream, args.top_k, novelty=getattr(clf, "novelty", None) is not None,
                                segments=has_video)
        if has_video:
            bar = StatusLine() if not args.quiet and sys.stderr.isatty() else None
            rows = video.classify_paths(files, clf, top_k=args.top_k, batch_size=args.batch_size, every=args.every,
                                        progress=bar)
        else:
            rows = (r.as_dict() for r in classify_stream(files, clf, top_k=args.top_k, batch_size=args.batch_size,
                                                         progress=bar, early=early))
        for row in rows:
            out.write(row)
            failed += row["error"] is not None
        if bar:
            bar.clear()
        out.close()
    if failed:
        say(f"cnndesk: {failed} of {len(files)} inputs could not be classified", sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def run_merge(args) -> int:
    from cnndesk.core.common.safeio import OutputError, check_output
    from cnndesk.core.predict import results as results_io

    try:
        check_output(args.out, force=args.force)
        n = results_io.merge(args.parts, args.out)
    except (OSError, ValueError, OutputError) as exc:
        return fail(f"cnndesk merge: error: {exc}", EXIT_USAGE)
    return fail(f"cnndesk: merged {n} rows from {len(args.parts)} parts into {args.out}", EXIT_OK)
