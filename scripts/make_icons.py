"""Draw the app icon (a stack of feature maps feeding a bright output node) at several sizes.

Run: .venv/bin/python scripts/make_icons.py  (the PNGs are committed in resources/icons)."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"


def draw(size: int = 1024) -> Image.Image:
    s = size
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    # rounded-square background with a vertical gradient (indigo -> teal)
    grad = Image.new("RGBA", (s, s))
    g = ImageDraw.Draw(grad)
    for y in range(s):
        t = y / (s - 1)
        c = (int(48 + 10 * t), int(63 + 120 * t), int(159 + 20 * t), 255)
        g.line([(0, y), (s, y)], fill=c)
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle([s * 0.06, s * 0.06, s * 0.94, s * 0.94], radius=s * 0.2, fill=255)
    img.paste(grad, (0, 0), mask)
    d = ImageDraw.Draw(img)
    # three stacked "feature maps"
    for i, alpha in enumerate((110, 170, 255)):
        off = s * (0.2 + 0.07 * i)
        w = s * 0.34
        d.rounded_rectangle([off, off, off + w, off + w], radius=s * 0.04,
                            fill=(255, 255, 255, alpha), outline=(30, 40, 110, 255), width=max(1, s // 90))
    # a 3x3 kernel grid on the front map
    x0 = y0 = s * 0.34
    w = s * 0.34
    for k in range(1, 3):
        d.line([(x0 + w * k / 3, y0), (x0 + w * k / 3, y0 + w)], fill=(48, 63, 159, 255), width=max(1, s // 120))
        d.line([(x0, y0 + w * k / 3), (x0 + w, y0 + w * k / 3)], fill=(48, 63, 159, 255), width=max(1, s // 120))
    # connection to the output node
    d.line([(x0 + w, y0 + w), (s * 0.77, s * 0.77)], fill=(255, 255, 255, 230), width=max(1, s // 45))
    r = s * 0.09
    glow = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse([s * 0.77 - r * 1.6, s * 0.77 - r * 1.6, s * 0.77 + r * 1.6, s * 0.77 + r * 1.6], fill=(255, 213, 79, 150))
    img = Image.alpha_composite(img, glow.filter(ImageFilter.GaussianBlur(s * 0.03)))
    d = ImageDraw.Draw(img)
    d.ellipse([s * 0.77 - r, s * 0.77 - r, s * 0.77 + r, s * 0.77 + r], fill=(255, 213, 79, 255), outline=(255, 255, 255, 255), width=max(1, s // 70))
    return img


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    big = draw(1024)
    for size in (16, 32, 48, 64, 128, 256, 512):
        big.resize((size, size), Image.Resampling.LANCZOS).save(OUT / f"cnndesk-{size}.png", optimize=True)
    big.resize((256, 256), Image.Resampling.LANCZOS).save(OUT / "cnndesk.ico", sizes=[(16, 16), (32, 32), (48, 48), (256, 256)])
    big.save(OUT / "cnndesk.icns", format="ICNS")  # the macOS app bundle's icon (16-1024 px)


if __name__ == "__main__":
    main()
