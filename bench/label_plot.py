"""The labelling benchmark's curves as a PNG, drawn with Pillow (matplotlib is not a dependency):
accuracy of the suggestions on the rest of the folder against the number of labels, the app's
picks (solid) vs random picks (dashed), one panel per data family (seeds averaged)."""

from __future__ import annotations

from collections import defaultdict

from PIL import Image, ImageDraw, ImageFont

W, H = 420, 320
PAD_L, PAD_R, PAD_T, PAD_B = 52, 14, 34, 44
APP, RANDOM = (31, 119, 180), (214, 39, 40)


def _font(size: int):
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _panel(title: str, budgets: list[int], app: list[float], rnd: list[float], lo: float) -> Image.Image:
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f, small = _font(14), _font(11)
    d.text((PAD_L, 8), title, fill="black", font=f)
    x0, x1, y0, y1 = PAD_L, W - PAD_R, H - PAD_B, PAD_T
    import math

    lx = [math.log(b) for b in budgets]

    def px(i):
        return x0 + (lx[i] - lx[0]) / ((lx[-1] - lx[0]) or 1) * (x1 - x0)

    def py(v):
        return y0 - (v - lo) / (1 - lo) * (y0 - y1)

    d.rectangle([x0, y1, x1, y0], outline=(120, 120, 120))
    lo = max(lo, 0.0)
    steps = max(1, round((1 - lo) * 10))
    if steps > 6:  # ticks every 20 points
        steps = (steps + 1) // 2
        lo = 1 - 0.2 * steps
    for s in range(steps + 1):
        v = lo + (1 - lo) * s / steps
        y = py(v)
        d.line([(x0, y), (x1, y)], fill=(230, 230, 230))
        d.text((6, y - 6), f"{v:.0%}", fill="black", font=small)
    for i, b in enumerate(budgets):
        d.line([(px(i), y0), (px(i), y0 + 4)], fill="black")
        d.text((px(i) - 8, y0 + 6), str(b), fill="black", font=small)
    d.text(((x0 + x1) / 2 - 40, H - 18), "labels (log scale)", fill="black", font=small)
    for series, colour, dash in ((rnd, RANDOM, True), (app, APP, False)):
        pts = [(px(i), py(v)) for i, v in enumerate(series)]
        for (a, b), (c, e) in zip(pts, pts[1:], strict=False):
            if dash:
                n = 8
                for k in range(0, n, 2):
                    d.line([(a + (c - a) * k / n, b + (e - b) * k / n), (a + (c - a) * (k + 1) / n, b + (e - b) * (k + 1) / n)],
                           fill=colour, width=2)
            else:
                d.line([(a, b), (c, e)], fill=colour, width=3)
        for x, y in pts:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    d.line([(x1 - 150, y0 - 34), (x1 - 125, y0 - 34)], fill=APP, width=3)
    d.text((x1 - 120, y0 - 40), "app's picks", fill="black", font=small)
    d.line([(x1 - 150, y0 - 18), (x1 - 125, y0 - 18)], fill=RANDOM, width=2)
    d.text((x1 - 120, y0 - 24), "random picks", fill="black", font=small)
    return img


def plot(results: list[dict], path: str) -> None:
    """``results``: bench_label.simulate() outputs (several seeds per family are averaged)."""
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_family[r["family"]].append(r)
    panels = []
    for fam, runs in by_family.items():
        budgets = sorted({int(b) for r in runs for b in r["app"]})

        def mean(kind, b, runs=runs):
            vals = [r[kind][b]["accuracy"] if b in r[kind] else r[kind][str(b)]["accuracy"] for r in runs]
            return sum(vals) / len(vals)

        app = [mean("app", b) for b in budgets]
        rnd = [mean("random", b) for b in budgets]
        lo = max(0.0, min(app + rnd) - 0.05)
        lo = int(lo * 10) / 10
        title = f"{fam}: {runs[0]['images']} images, {runs[0]['classes']} classes ({len(runs)} folders)"
        panels.append(_panel(title, budgets, app, rnd, lo))
    out = Image.new("RGB", (W * len(panels), H), "white")
    for i, p in enumerate(panels):
        out.paste(p, (i * W, 0))
    out.save(path)
