"""``cnndesk train DATA_DIR``: fine-tune on a folder with one subfolder per class (also under torchrun).

Every default comes from :class:`cnndesk.core.training.dispatch.TrainConfig` (the one the app's dialog uses).
"""

from __future__ import annotations

import os
import sys

from cnndesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    StatusLine,
    add_device,
    fail,
    positive_int,
    progress_line,
    say,
    say_json,
)

HELP = "fine-tune on a folder with one subfolder per class"


def add_arguments(t) -> None:
    from cnndesk.core.training.config import TrainConfig

    d, quick, full = TrainConfig(), TrainConfig(mode="quick"), TrainConfig(mode="full")
    t.description = ("Teach the CNN your own classes: DATA_DIR holds one subfolder per class (or "
                     "train/ and val/ folders that do). Prints progress on stderr and ends with one JSON line of "
                     "final metrics on stdout.")
    t.add_argument("data", metavar="DATA_DIR")
    t.add_argument("--out", "-o", required=True, metavar="FILE", help="the model file to write (.safetensors)")
    t.add_argument("--mode", choices=("quick", "full"), default=d.mode, help="quick: frozen network + new head, seconds, no torch on the CPU; full: fine-tune the network (default %(default)s)")
    t.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"default: {quick.resolved_epochs()} head epochs (quick) or as many as fit --time-budget (full, 3-15, early stopping)")
    t.add_argument("--val-split", type=float, default=d.val_split, metavar="F", help="validation share when DATA_DIR has no val/ folder (default %(default)s)")
    t.add_argument("--seed", type=int, default=d.seed)
    add_device(t, d.device)
    t.add_argument("--base", default=d.base, metavar="MODEL", help="the network to start from (default %(default)s)")
    t.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {quick.resolved_lr():g} quick, {full.resolved_lr():g} full)")
    t.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    t.add_argument("--unfrozen-blocks", type=int, default=d.unfrozen_blocks, metavar="N", help="full mode: train the last N blocks (0: the whole network; default: the last 2, so the earlier stages keep their pretrained features)")
    t.add_argument("--image-size", type=positive_int, default=d.image_size, metavar="PX", help="full mode: training resolution (default: the network's own 224 px; from the images' sizes when the whole network is trained)")
    t.add_argument("--flip", action="store_true", default=d.augment_flip, help="full mode: random horizontal flips (off by default: they change text, digits, arrows)")
    t.add_argument("--from", dest="init_from", metavar="MODEL_FILE", default=d.init_from, help="continue from one of your models (more images; same or new classes)")
    t.add_argument("--time-budget", type=float, default=d.time_budget_s, metavar="S", help="full mode with automatic epochs: about this many seconds of training (default %(default)g; 0: no budget)")
    t.add_argument("--force", action="store_true", help="replace --out if it exists")


def run(args) -> int:
    from cnndesk.core.training.distributed import init_distributed, shutdown_distributed

    dist_info = init_distributed(args.device)  # rank 0 of 1 outside torchrun
    rank, world, device = dist_info.rank, dist_info.world, dist_info.device
    if world > 1 and args.mode != "full":
        if rank == 0:
            say("cnndesk train: error: distributed training (torchrun) needs --mode full", sys.stderr)
        return EXIT_USAGE
    if rank != 0:  # only rank 0 talks and writes the model file
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        return _train(args, device, rank, world)
    finally:
        shutdown_distributed()


def _train(args, device: str, rank: int, world: int) -> int:
    from cnndesk.core.common.errors import Cancelled, CnndeskError, ModelError
    from cnndesk.core.common.safeio import OutputError, check_output
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.training.config import TrainConfig
    from cnndesk.core.training.datasets import DatasetError, scan
    from cnndesk.core.training.dispatch import train

    out = args.out if args.out.endswith(".safetensors") else args.out + ".safetensors"
    try:  # before any training work
        if os.path.isdir(args.out):
            check_output(args.out, force=args.force)  # "is a folder"
        check_output(out, force=args.force)
    except OutputError as exc:
        return fail(f"cnndesk train: error: {exc}", EXIT_USAGE)
    if not 0.0 <= args.val_split < 1.0:
        return fail("cnndesk train: error: --val-split must be between 0 and 1", EXIT_USAGE)
    try:
        get_spec(args.base)
        if args.init_from:
            get_spec(args.init_from)
        ds = scan(args.data, val_split=args.val_split, seed=args.seed)
    except (DatasetError, ModelError) as exc:
        return fail(f"cnndesk train: error: {exc}", EXIT_USAGE)
    counts = ", ".join(f"{c}: {n}" for c, n in ds.counts().items())  # class folder names: escaped by say()
    say(f"cnndesk: {len(ds.classes)} classes ({counts}); {len(ds.train)} for training, {len(ds.val)} for validation"
        + (f"; {world} processes" if world > 1 else ""), sys.stderr)
    for w in ds.warnings:
        say(f"cnndesk: warning: {w}", sys.stderr)
    config = TrainConfig(mode=args.mode, base=args.base, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         val_split=args.val_split, seed=args.seed, unfrozen_blocks=args.unfrozen_blocks,
                         image_size=args.image_size, device=device, init_from=args.init_from,
                         augment_flip=args.flip, time_budget_s=args.time_budget)
    status = StatusLine() if sys.stderr.isatty() else None

    def on_epoch(s):
        if args.mode == "quick" and s.epoch % 50 and s.epoch != s.epochs:
            return  # the head reports every 10 epochs; print every 50
        if status:
            status.clear()
        say(f"epoch {s.epoch}/{s.epochs}: train loss {s.train_loss:.3f} acc {s.train_acc:.1%} · "
            f"val loss {s.val_loss:.3f} acc {s.val_acc:.1%} ({s.seconds:.1f} s)", sys.stderr)

    try:
        model = train(ds, config, progress=progress_line(status), cancel=None, on_epoch=on_epoch)
    except Cancelled as exc:
        return fail(f"cnndesk: {exc}", EXIT_INTERRUPTED)
    except CnndeskError as exc:
        return fail(f"cnndesk: training failed: {exc}", EXIT_SOME_FAILED)
    finally:
        if status:
            status.clear()
    if rank != 0:
        return EXIT_OK
    path = model.save(out, overwrite=args.force)
    _say_chosen_regularisation(args, model)
    metrics = {**model.metrics(), "model": str(path), "processes": world}
    for _path, reason in model.skipped[:10]:
        say(f"cnndesk: skipped {reason}", sys.stderr)
    say_json(metrics)
    return EXIT_OK


def _say_chosen_regularisation(args, model) -> None:
    """The epoch lines of a quick training are the default weight decay's fit, shown live while
    the others are tried; when another one won on the validation split, say so and give its
    numbers, or the last line shown ("val acc 50%") contradicts the result (val acc 100%)."""
    from cnndesk.core.training.head import WEIGHT_DECAYS

    chosen = getattr(model.config, "weight_decay", None)
    if args.mode != "quick" or not model.history or chosen is None or chosen == WEIGHT_DECAYS[0]:
        return
    h = model.history[-1]
    say(f"cnndesk: the epochs above tried weight decay {WEIGHT_DECAYS[0]:g}; {chosen:g} did better on the "
        f"validation images and was kept: val loss {h.val_loss:.3f} acc {h.val_acc:.1%}", sys.stderr)
