"""``cnndesk explain IMAGE``: where the CNN looked (Grad-CAM or occlusion), as an overlay PNG."""

from __future__ import annotations

from cnndesk.cli.common import (
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    fail,
    say,
)

HELP = "show where the CNN looked: a heatmap over the image"


def add_arguments(x) -> None:
    x.description = ("Grad-CAM (PyTorch) or occlusion sensitivity (forward passes only, no PyTorch needed) "
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


def _class_index(spec, label: str | None) -> int | None:
    """The class ``label`` names (a name, any case, or an index); None for the top class. Raises
    ValueError with the message the user sees."""
    from cnndesk.core.common.safeio import display

    if label is None:
        return None
    wanted = label.strip().lower()
    matches = [i for i, name in enumerate(spec.labels) if name.lower() == wanted]
    if not matches and wanted.isdigit() and int(wanted) < len(spec.labels):
        matches = [int(wanted)]
    if not matches:
        close = [display(n) for n in spec.labels if wanted in n.lower()][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"the model has no class '{display(label)}'.{hint}")
    return matches[0]


def run(args) -> int:
    import os

    import numpy as np

    from cnndesk.core.common.errors import CnndeskError, ImageLoadError, ModelError
    from cnndesk.core.common.safeio import OutputError, check_output, display, safe_write
    from cnndesk.core.images.load import load_image
    from cnndesk.core.models.registry import get_spec
    from cnndesk.core.predict import explain

    try:
        for target in (args.out, args.raw):
            if target:
                check_output(target, force=args.force)
        if args.raw and os.path.realpath(args.raw) == os.path.realpath(args.out):
            raise OutputError(f"--out and --raw are the same file ({display(args.out)}); give two names")
        spec = get_spec(args.model)
        class_index = _class_index(spec, args.label)
    except (OutputError, ModelError, ValueError) as exc:
        return fail(f"cnndesk explain: error: {exc}", EXIT_USAGE)
    try:
        image = load_image(args.image, max_side=explain.MAX_OVERLAY_SIDE)  # the overlay's size, no more
        if max(image.size) > explain.MAX_OVERLAY_SIDE:  # (every mode is reduced; this only guards)
            image.thumbnail((explain.MAX_OVERLAY_SIDE,) * 2, reducing_gap=2.0)
    except ImageLoadError as exc:
        return fail(f"cnndesk: {exc}", EXIT_SOME_FAILED)
    try:
        if args.method == "occlusion":
            from cnndesk.core.predict.classifier import Classifier

            clf = Classifier(spec)
            heat, idx = explain.occlusion(clf, image, class_index)
            probs = clf.predict_arrays(clf.prepare(image)[None], len(spec.labels))[0]
            score = dict(zip(probs.indices, probs.scores, strict=True))[idx]
        else:
            ex = explain.Explainer(spec)
            heat, idx = ex.gradcam(image, class_index)
            score = float(ex.predict(image)[idx])
    except CnndeskError as exc:
        return fail(f"cnndesk: {exc}", EXIT_MODEL)
    full = explain.to_image_heat(heat, image.size, spec.preprocess)
    with safe_write(args.out, "wb", overwrite=args.force) as fh:
        explain.overlay(image, full, args.opacity).save(fh, format="PNG")
    if args.raw:
        with safe_write(args.raw, "wb", overwrite=args.force) as fh:
            np.save(fh, full.astype(np.float32))
    method = "Grad-CAM" if args.method == "gradcam" else "occlusion"
    say(f"{display(spec.labels[idx])} ({score:.1%}): {method} overlay saved to {display(args.out)}"
        + (f", heatmap to {display(args.raw)}" if args.raw else ""))
    return EXIT_OK
