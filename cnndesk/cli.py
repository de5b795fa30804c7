"""The command line: ``cnndesk`` opens the app; ``cnndesk classify|models`` work headless.

Exit codes: 0 everything worked; 1 some inputs failed (the rest are still reported) or the job
failed (e.g. a full disk); 2 usage errors (bad options, unknown model, an output path that cannot
be written); 3 the model could not be loaded (e.g. offline, an unusable model file);
130 interrupted. No command ever ends with a Python traceback: an unexpected error prints one
line (exit 1) and its details go to the log file; ``--debug`` prints the traceback too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import time

from cnndesk import __version__

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
COMMANDS = ("classify", "models", "gui", "train", "export", "explain", "merge", "doctor")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a one-line message, like argparse, minus the noise
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="cnndesk",
        description="Classify images with a convolutional neural network, on your machine, offline. "
        "With no command (or with image files/folders) the desktop app opens.",
        epilog="Exit codes: 0 ok, 1 some inputs failed or the job failed, 2 usage error, 3 model unavailable. "
        "Unexpected errors print one line; --debug prints the details (also kept in the log file).",
    )
    p.add_argument("--debug", action="store_true", help="print full error details (tracebacks) and debug logs")
    p.add_argument("--version", action="version", version=f"cnndesk {__version__}")
    p.add_argument("--selftest", action="store_true", help="check this installation end to end (offscreen) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    g = sub.add_parser("gui", help="open the desktop app (the default)", description="Open the desktop app, optionally with images or folders to classify.")
    g.add_argument("paths", nargs="*", metavar="IMAGE_OR_FOLDER")

    c = sub.add_parser(
        "classify",
        help="classify image files or folders and print the results",
        description="Classify image files or folders. Prints one result per file; a file that "
        "cannot be read is reported with the reason and the others go on.",
        epilog="Exit codes: 0 every input classified, 1 some inputs failed, 2 usage error, "
        "3 model unavailable (e.g. needs a download and there is no network).",
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="image or video files and/or folders")
    c.add_argument("--model", "-m", metavar="NAME|FILE", help="registry name (see `cnndesk models`) or a model file; default: efficientnet-lite0")
    c.add_argument("--top-k", "-k", type=_positive_int, default=5, metavar="K", help="how many classes per image (default 5)")
    c.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table", help="output format (default table)")
    c.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=os.environ.get("CNNDESK_DEVICE", "auto"), help="where the model runs (default auto: CUDA, then MPS, then CPU)")
    c.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    c.add_argument("--batch-size", type=_positive_int, default=None, metavar="N", help="images per model call (default: 2 on the CPU, 32 on a GPU)")
    c.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto", help="CPU runtime (default auto: ONNX Runtime, PyTorch as fallback)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    c.add_argument("--shard", metavar="I/N", type=_shard, default=None, help="classify only shard I of N (0-based; deterministic, for Slurm arrays / Kubernetes indexed jobs); join the parts with `cnndesk merge`")
    c.add_argument("--engine", choices=("local", "ray"), default="local", help="ray: classify with Ray Data on a Ray cluster (pip install 'cnndesk[cluster]')")
    c.add_argument("--out", "-o", metavar="FILE", default=None, help="write results to FILE (.csv, .json or, with --engine ray, .parquet) instead of stdout")
    c.add_argument("--every", type=_positive_float, default=None, metavar="SECONDS", help="videos: classify one frame every SECONDS (default 0.5); boundaries are refined between samples")
    c.add_argument("--force", action="store_true", help="replace --out if it exists")

    t = sub.add_parser(
        "train",
        help="fine-tune on a folder with one subfolder per class",
        description="Teach the CNN your own classes: DATA_DIR holds one subfolder per class (or "
        "train/ and val/ folders that do). Prints progress on stderr and ends with one JSON line of "
        "final metrics on stdout.",
    )
    t.add_argument("data", metavar="DATA_DIR")
    t.add_argument("--out", "-o", required=True, metavar="FILE", help="the model file to write (.safetensors)")
    t.add_argument("--mode", choices=("quick", "full"), default="quick", help="quick: frozen network + new head, seconds, no torch on the CPU; full: fine-tune the network (default quick)")
    t.add_argument("--epochs", type=_positive_int, default=None, help="default: 200 head epochs (quick) or chosen from the data (full, 3-12, early stopping)")
    t.add_argument("--val-split", type=float, default=0.2, metavar="F", help="validation share when DATA_DIR has no val/ folder (default 0.2)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    t.add_argument("--base", default="efficientnet-lite0", metavar="MODEL", help="the network to start from (default efficientnet-lite0)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default 0.01 quick, 5e-4 full)")
    t.add_argument("--batch-size", type=_positive_int, default=16)
    t.add_argument("--unfrozen-blocks", type=int, default=None, metavar="N", help="full mode: train the last N blocks (0: the whole network; default: chosen from the data)")
    t.add_argument("--image-size", type=_positive_int, default=None, metavar="PX", help="full mode: training resolution (default: chosen from the images' sizes)")
    t.add_argument("--flip", action="store_true", help="full mode: random horizontal flips (off by default: they change text, digits, arrows)")
    t.add_argument("--from", dest="init_from", metavar="MODEL_FILE", default=None, help="continue from one of your models (more images; same or new classes)")
    t.add_argument("--force", action="store_true", help="replace --out if it exists")

    from cnndesk.core.export_formats import FORMATS as EXPORT_FORMATS  # a table, no heavy imports

    e = sub.add_parser("export", help="export a model as a bundle folder that gives the app's answers anywhere",
                       description="Write a folder with the model in FORMAT, model.json, a predict.py that needs only "
                       "Pillow, numpy and the runtime (and prints exactly `cnndesk classify --format json`), a README "
                       "and parity.json: the bundle's predict.py checked against the app on the model's validation "
                       "images. Formats: " + "; ".join(f"{f.name}: {f.description}" for f in EXPORT_FORMATS.values()))
    e.add_argument("model", metavar="MODEL", help="registry name or model file")
    e.add_argument("--format", choices=tuple(EXPORT_FORMATS), default="onnx", help="default: onnx")
    e.add_argument("--out", "-o", required=True, metavar="DIR", help="the bundle folder to create")
    e.add_argument("--data", metavar="DIR", default=None,
                   help="images to check (and calibrate int8) with, instead of the dataset recorded in the model file")
    e.add_argument("--top-k", "-k", type=_positive_int, default=5, metavar="K", help="top-k of the parity check (default 5)")
    e.add_argument("--force", action="store_true", help="replace DIR if it exists")

    x = sub.add_parser("explain", help="show where the CNN looked: a heatmap over the image",
                       description="Grad-CAM (PyTorch) or occlusion sensitivity (forward passes only, no PyTorch needed) "
                       "for the top class or --class, saved as an overlay PNG. --raw saves the heatmap as a float32 "
                       ".npy array in [0, 1] with the image's own height and width (upright, EXIF orientation applied; images "
                       "longer than 2048 px are scaled down to 2048 px on their longest side first).")
    x.add_argument("image", metavar="IMAGE")
    x.add_argument("--model", "-m", metavar="NAME|FILE")
    x.add_argument("--class", dest="label", metavar="LABEL", help="explain this class instead of the top one")
    x.add_argument("--method", choices=("gradcam", "occlusion"), default="gradcam")
    x.add_argument("--out", "-o", required=True, metavar="overlay.png")
    x.add_argument("--raw", metavar="heat.npy", help="also save the heatmap as a numpy array")
    x.add_argument("--opacity", type=float, default=0.5)
    x.add_argument("--force", action="store_true", help="replace existing output files")

    g2 = sub.add_parser("merge", help="join the CSV or JSON parts of a sharded classify run",
                        description="Join the outputs of `cnndesk classify --shard I/N` runs into one file, in the order an unsharded run prints.")
    g2.add_argument("parts", nargs="+", metavar="PART")
    g2.add_argument("--out", "-o", required=True, metavar="FILE", help="the merged file (.csv or .json)")
    g2.add_argument("--force", action="store_true")

    from cnndesk import doctor_cli

    doctor_cli.add_parser(sub)
    m = sub.add_parser("models", help="list the available models", description="List the model registry: built-in, zoo (downloaded on first use) and your trained models.")
    m.add_argument("--format", "-f", choices=("table", "json"), default="table")
    return p


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text}: need 0 <= I < N")
    return i, n


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("CNNDESK_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="cnndesk: %(message)s")
    try:
        return _main(argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("cnndesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as exc:  # the top-level handler: one line, never a traceback
        return _report_unexpected(exc, debug)


def _report_unexpected(exc: BaseException, debug: bool) -> int:
    from cnndesk import crash
    from cnndesk.core.errors import ModelError
    from cnndesk.core.safeio import OutputError

    where = crash.log_exception(exc)
    if debug:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    hint = "" if debug else " (run with --debug for details" + (f"; logged to {where})" if where else ")")
    if isinstance(exc, OutputError):
        hint = ""
    try:
        print(f"cnndesk: error: {crash.plain_reason(exc)}{hint}", file=sys.stderr)
    except Exception:
        pass
    if isinstance(exc, OutputError):
        return EXIT_USAGE
    if isinstance(exc, ModelError):
        return EXIT_MODEL
    return EXIT_SOME_FAILED


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--selftest"]:
        from cnndesk.selftest import run

        return run()
    qt_args: list[str] = []
    if not argv or argv[0] == "gui" or argv[0] not in COMMANDS:  # Qt's own options go to Qt
        from cnndesk.qtargs import split_qt_args

        argv, qt_args = split_qt_args(argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["gui", *argv]
    args = build_parser().parse_args(argv)
    args.qt_args = qt_args
    if args.command is None:
        argv = ["gui"]
        args = build_parser().parse_args(argv)
        args.qt_args = qt_args
    try:
        if args.command == "classify":
            return cmd_classify(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "explain":
            return cmd_explain(args)
        if args.command == "merge":
            return cmd_merge(args)
        if args.command == "doctor":
            from cnndesk.doctor_cli import run as cmd_doctor

            return cmd_doctor(args)
        return cmd_gui(args)
    except KeyboardInterrupt:
        print("cnndesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("torch", "torchvision", "timm", "onnxscript"):
            raise
        from cnndesk.core.system import FULL_ONLY

        what = {"train": "full fine-tuning", "explain": "Grad-CAM", "export": "exporting"}.get(args.command, "this")
        hint = " (occlusion works: --method occlusion)" if args.command == "explain" else (
            " (quick training works: --mode quick)" if args.command == "train" else "")
        print(f"cnndesk: {what} {FULL_ONLY}{hint}", file=sys.stderr)
        return EXIT_MODEL
    except BrokenPipeError:  # `cnndesk classify ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return EXIT_OK


def cmd_gui(args) -> int:
    try:
        from cnndesk.qt.app import run_app
    except ImportError as exc:
        print(f"cnndesk: the desktop app cannot start: {exc}", file=sys.stderr)
        return EXIT_MODEL
    return run_app(args.paths, getattr(args, "qt_args", []))


def _load_classifier(args, n_files: int):
    from cnndesk.core import system
    from cnndesk.core.errors import ModelError, NetworkRequiredError
    from cnndesk.core.inference import Classifier
    from cnndesk.core.models.registry import get_spec

    try:
        spec = get_spec(args.model)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    # One image: all cores on the model. Many: the decoders need the cores, the model gets one.
    threads = 1 if n_files > (args.batch_size or 2) else system.physical_cores()
    progress = None
    if not args.quiet and sys.stderr.isatty():
        progress = _StatusLine()
    try:
        return Classifier(spec, device=args.device, backend=args.backend, threads=threads, progress=progress)
    except NetworkRequiredError as exc:
        raise _ModelUnavailable(str(exc)) from None
    except ModelError as exc:
        if "not available" in str(exc) and args.device != "auto":
            raise UsageError(str(exc)) from None
        raise _ModelUnavailable(str(exc)) from None
    finally:
        if progress is not None:
            progress.clear()


class _ModelUnavailable(Exception):
    pass


def cmd_classify(args) -> int:
    from cnndesk.core import results_io
    from cnndesk.core.pipeline import classify_stream, expand_paths
    from cnndesk.core.safeio import check_output, display, safe_write

    if args.out:  # before any work: a missing folder, a folder, an existing file, read-only
        check_output(args.out, force=args.force)
    if args.engine == "ray":
        from cnndesk.cluster import ray_classify

        return ray_classify.main(args)
    skipped: list[tuple[str, str]] = []
    files = expand_paths(args.paths, recursive=args.recursive, videos=True, skipped=skipped)
    for folder, reason in skipped:
        print(f"cnndesk: warning: skipped the folder {display(folder)} ({reason})", file=sys.stderr)
    if args.shard is not None:
        from cnndesk.core.pipeline import select_shard

        files = select_shard(files, args.paths, *args.shard)
        if not files:
            print(f"cnndesk: shard {args.shard[0]}/{args.shard[1]} has no files", file=sys.stderr)
    if not files and args.shard is None:
        hint = "" if args.recursive else " (use --recursive to look in subfolders)"
        print(f"cnndesk: no images or videos found in {', '.join(map(display, args.paths))}{hint}", file=sys.stderr)
        return EXIT_SOME_FAILED
    from cnndesk.core import video

    has_video = any(video.is_media_path(f) for f in files)
    try:  # a video: the decoder thread takes one core, the model gets one
        clf = _load_classifier(args, len(files) + (1 << 20) * has_video)
    except UsageError as exc:
        print(f"cnndesk classify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _ModelUnavailable as exc:
        print(f"cnndesk: {exc}", file=sys.stderr)
        return EXIT_MODEL

    fmt = args.format
    if args.out:
        fmt = "json" if args.out.endswith(".json") else "csv" if args.out.endswith(".csv") else fmt
        target = safe_write(args.out, "w", overwrite=args.force, newline="")  # exclusive temp, renamed at the end
    else:
        target = contextlib.nullcontext(sys.stdout)
    failed = 0
    show_bar = len(files) > 1 and not args.quiet and sys.stderr.isatty()
    bar = _ProgressBar(len(files)) if show_bar and not has_video else None
    with target as stream:
        out = results_io.writer(fmt, stream, args.top_k, novelty=getattr(clf, "novelty", None) is not None,
                                segments=has_video)
        if has_video:
            bar = _StatusLine() if not args.quiet and sys.stderr.isatty() else None
            rows = video.classify_paths(files, clf, top_k=args.top_k, batch_size=args.batch_size, every=args.every,
                                        progress=bar)
        else:
            rows = (r.as_dict() for r in classify_stream(files, clf, top_k=args.top_k, batch_size=args.batch_size,
                                                         progress=bar))
        for row in rows:
            out.write(row)
            failed += row["error"] is not None
        if bar:
            bar.clear()
        out.close()
    if failed:
        print(f"cnndesk: {failed} of {len(files)} inputs could not be classified", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


class _StatusLine:
    def __init__(self):
        self.shown = False

    def __call__(self, done, total, message):
        sys.stderr.write("\r\033[K" + message)
        sys.stderr.flush()
        self.shown = True

    def clear(self):
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


class _ProgressBar:
    def __init__(self, total: int):
        self.total = total
        self.start = time.perf_counter()
        self.last = 0.0

    def __call__(self, done, total, message):
        now = time.perf_counter()
        if now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        frac = done / self.total if self.total else 1.0
        width = 30
        filled = int(frac * width)
        rate = done / (now - self.start) if now > self.start else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        sys.stderr.write(
            f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"{rate:.1f} img/s  ETA {_fmt_secs(eta)}"
        )
        sys.stderr.flush()

    def clear(self):
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _fmt_secs(s: float) -> str:
    s = int(s + 0.5)
    return f"{s // 60}:{s % 60:02d}"


def _init_distributed(args):
    """Under torchrun (WORLD_SIZE > 1): join the process group. Returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = args.device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
        args.device = "cuda"
    else:
        args.device = "cpu"
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), world


def cmd_train(args) -> int:
    rank, world = _init_distributed(args)
    if world > 1 and args.mode != "full":
        if rank == 0:
            print("cnndesk train: error: distributed training (torchrun) needs --mode full", file=sys.stderr)
        return EXIT_USAGE
    if rank != 0:  # only rank 0 talks and writes the model file
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        return _train(args, rank, world)
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _train(args, rank: int, world: int) -> int:
    from cnndesk.core.datasets import DatasetError, scan
    from cnndesk.core.errors import Cancelled, CnndeskError, ModelError
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.safeio import OutputError, check_output
    from cnndesk.core.training import TrainConfig, train

    out = args.out if args.out.endswith(".safetensors") else args.out + ".safetensors"
    try:  # before any training work
        if os.path.isdir(args.out):
            check_output(args.out, force=args.force)  # "is a folder"
        check_output(out, force=args.force)
    except OutputError as exc:
        print(f"cnndesk train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not 0.0 <= args.val_split < 1.0:
        print("cnndesk train: error: --val-split must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        get_spec(args.base)
        if args.init_from:
            get_spec(args.init_from)
        ds = scan(args.data, val_split=args.val_split, seed=args.seed)
    except (DatasetError, ModelError) as exc:
        print(f"cnndesk train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    counts = ", ".join(f"{c}: {n}" for c, n in ds.counts().items())
    print(f"cnndesk: {len(ds.classes)} classes ({counts}); {len(ds.train)} for training, {len(ds.val)} for validation"
          + (f"; {world} processes" if world > 1 else ""), file=sys.stderr)
    for w in ds.warnings:
        print(f"cnndesk: warning: {w}", file=sys.stderr)
    config = TrainConfig(mode=args.mode, base=args.base, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         val_split=args.val_split, seed=args.seed, unfrozen_blocks=args.unfrozen_blocks,
                         image_size=args.image_size, device=args.device, init_from=args.init_from,
                         augment_flip=args.flip)
    status = _StatusLine() if sys.stderr.isatty() else None

    def on_epoch(s):
        if args.mode == "quick" and s.epoch % 50 and s.epoch != s.epochs:
            return  # the head reports every 10 epochs; print every 50
        if status:
            status.clear()
        print(f"epoch {s.epoch}/{s.epochs}: train loss {s.train_loss:.3f} acc {s.train_acc:.1%} · "
              f"val loss {s.val_loss:.3f} acc {s.val_acc:.1%} ({s.seconds:.1f} s)", file=sys.stderr)

    def progress(done, total, text):
        if status:
            status(done, total, f"{text} {done}/{total}" if total else text)

    try:
        model = train(ds, config, progress=progress, cancel=None, on_epoch=on_epoch)
    except Cancelled as exc:
        print(f"cnndesk: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CnndeskError as exc:
        print(f"cnndesk: training failed: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    finally:
        if status:
            status.clear()
    if rank != 0:
        return EXIT_OK
    path = model.save(out, overwrite=args.force)
    metrics = {**model.metrics(), "model": str(path), "processes": world}
    for _path, reason in model.skipped[:10]:
        print(f"cnndesk: skipped {reason}", file=sys.stderr)
    print(json.dumps(metrics))
    return EXIT_OK


def cmd_export(args) -> int:
    from cnndesk.core.bundle import ExportError, check_bundle_out, export_bundle
    from cnndesk.core.errors import CnndeskError, ModelError
    from cnndesk.core.models.registry import get_spec

    try:
        check_bundle_out(args.out, overwrite=args.force)  # before any work: the bundle is a new folder
        spec = get_spec(args.model)
    except (ModelError, ExportError) as exc:
        print(f"cnndesk export: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = export_bundle(spec, args.format, args.out, data=args.data, overwrite=args.force, top_k=args.top_k)
    except ExportError as exc:
        print(f"cnndesk export: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CnndeskError as exc:
        print(f"cnndesk: export failed: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except (RuntimeError, OSError, ValueError) as exc:  # the exporter's own errors: one line
        logging.getLogger("cnndesk").debug("export failed", exc_info=True)
        print(f"cnndesk: export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_MODEL
    print(report.describe())
    return EXIT_OK if report.ok else EXIT_SOME_FAILED


def cmd_explain(args) -> int:
    import numpy as np

    from cnndesk.core import explain
    from cnndesk.core.errors import CnndeskError, ImageLoadError, ModelError
    from cnndesk.core.images import load_image
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.safeio import OutputError, check_output, display, safe_write

    try:
        for target in (args.out, args.raw):
            if target:
                check_output(target, force=args.force)
    except OutputError as exc:
        print(f"cnndesk explain: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = get_spec(args.model)
    except ModelError as exc:
        print(f"cnndesk explain: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    class_index = None
    if args.label is not None:
        wanted = args.label.strip().lower()
        matches = [i for i, name in enumerate(spec.labels) if name.lower() == wanted]
        if not matches and wanted.isdigit() and int(wanted) < len(spec.labels):
            matches = [int(wanted)]
        if not matches:
            close = [display(n) for n in spec.labels if wanted in n.lower()][:5]
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            print(f"cnndesk explain: error: the model has no class '{display(args.label)}'.{hint}", file=sys.stderr)
            return EXIT_USAGE
        class_index = matches[0]
    try:
        image = load_image(args.image, max_side=explain.MAX_OVERLAY_SIDE)  # the overlay's size, no more
    except ImageLoadError as exc:
        print(f"cnndesk: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    try:
        if args.method == "occlusion":
            from cnndesk.core.inference import Classifier

            clf = Classifier(spec)
            heat, idx = explain.occlusion(clf, image, class_index)
            probs = clf.predict_arrays(clf.prepare(image)[None], len(spec.labels))[0]
            score = dict(zip(probs.indices, probs.scores, strict=True))[idx]
        else:
            ex = explain.Explainer(spec)
            heat, idx = ex.gradcam(image, class_index)
            score = float(ex.predict(image)[idx])
    except CnndeskError as exc:
        print(f"cnndesk: {exc}", file=sys.stderr)
        return EXIT_MODEL
    full = explain.to_image_heat(heat, image.size, spec.preprocess)
    with safe_write(args.out, "wb", overwrite=args.force) as fh:
        explain.overlay(image, full, args.opacity).save(fh, format="PNG")
    if args.raw:
        with safe_write(args.raw, "wb", overwrite=args.force) as fh:
            np.save(fh, full.astype(np.float32))
    method = "Grad-CAM" if args.method == "gradcam" else "occlusion"
    print(f"{display(spec.labels[idx])} ({score:.1%}): {method} overlay saved to {display(args.out)}"
          + (f", heatmap to {display(args.raw)}" if args.raw else ""))
    return EXIT_OK


def cmd_merge(args) -> int:
    from cnndesk.core import results_io
    from cnndesk.core.safeio import OutputError, check_output

    try:
        check_output(args.out, force=args.force)
        n = results_io.merge(args.parts, args.out)
    except (OSError, ValueError, OutputError) as exc:
        print(f"cnndesk merge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"cnndesk: merged {n} rows from {len(args.parts)} parts into {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_models(args) -> int:
    from cnndesk.core.models.registry import BUILTIN, user_model_entries
    from cnndesk.core.safeio import display, path_text

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
        print(json.dumps(rows, indent=2, ensure_ascii=False))
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
    sys.stdout.write(buf.getvalue())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
