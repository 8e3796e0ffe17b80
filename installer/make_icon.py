"""Draw the cxr-viewer icon from code: a stylised chest radiograph with a heat-map spot.

One list of shapes, on a 256-unit canvas, is written twice: as SVG (the scalable icon) and
rasterised with Pillow + numpy at up to 8x and downsampled (the PNG sizes, the Windows ``.ico`` and
the macOS ``.icns``). Small sizes drop the ribs, which would only blur at 16-32 px.

Usage (from the repository root)::

    .venv/bin/python installer/make_icon.py            # writes resources/icons/
    .venv/bin/python installer/make_icon.py --check    # exit 1 if the committed files differ

The drawing is deterministic, so ``--check`` tells whether the committed icons are current.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 256
MAX_SUPERSAMPLED = 4096  # px: 8x for the small sizes, less for the 1024 px icns master
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
NAME = "cxr-viewer"
OUT_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"

BACKGROUND = "#14212e"
SOFT_TISSUE = "#3b5266"
LUNG = "#0c1822"
BONE = "#e3ebf0"
# Heat spot: jet-like stops (offset, RGB, alpha), centre to rim.
HEAT_STOPS = (
    (0.00, (255, 32, 0), 0.95),
    (0.45, (255, 200, 0), 0.75),
    (1.00, (255, 240, 80), 0.0),
)


@dataclass(frozen=True)
class RoundedRect:
    x0: float
    y0: float
    x1: float
    y1: float
    radius: float
    fill: str
    min_px: int = 0  # drawn only on icons at least this many pixels wide


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float
    fill: str
    min_px: int = 0


@dataclass(frozen=True)
class Curve:
    """Quadratic Bezier stroke (SVG ``M p0 Q c p1``) with round caps."""

    p0: tuple[float, float]
    c: tuple[float, float]
    p1: tuple[float, float]
    width: float
    stroke: str
    min_px: int = 0


@dataclass(frozen=True)
class HeatSpot:
    cx: float
    cy: float
    r: float
    min_px: int = 0


Shape = RoundedRect | Ellipse | Curve | HeatSpot


def _ribs() -> list[Curve]:
    ribs = []
    for i in range(5):
        y = 70 + 30 * i
        for side in (-1, 1):
            ribs.append(
                Curve(
                    p0=(128 + side * 10, y),
                    c=(128 + side * 70, y - 26),
                    p1=(128 + side * 88, y + 30),
                    width=7,
                    stroke=BONE,
                    min_px=48,
                )
            )
    return ribs


SHAPES: tuple[Shape, ...] = (
    RoundedRect(8, 8, 248, 248, 44, BACKGROUND),
    Ellipse(128, 142, 96, 100, SOFT_TISSUE),
    Ellipse(90, 132, 36, 74, LUNG),
    Ellipse(166, 132, 36, 74, LUNG),
    Ellipse(140, 176, 30, 26, SOFT_TISSUE),  # heart shadow, left of the patient = right of image
    *_ribs(),
    RoundedRect(120, 34, 136, 232, 8, BONE),  # spine
    HeatSpot(168, 142, 40),
)


# ---- SVG -------------------------------------------------------------------------------------


def to_svg() -> str:
    """The icon as a standalone SVG document (all shapes, no size-dependent simplification)."""
    defs, body = [], []
    for i, shape in enumerate(SHAPES):
        if isinstance(shape, RoundedRect):
            body.append(
                f'<rect x="{shape.x0:g}" y="{shape.y0:g}" width="{shape.x1 - shape.x0:g}" '
                f'height="{shape.y1 - shape.y0:g}" rx="{shape.radius:g}" fill="{shape.fill}"/>'
            )
        elif isinstance(shape, Ellipse):
            body.append(
                f'<ellipse cx="{shape.cx:g}" cy="{shape.cy:g}" rx="{shape.rx:g}" '
                f'ry="{shape.ry:g}" fill="{shape.fill}"/>'
            )
        elif isinstance(shape, Curve):
            (x0, y0), (cx, cy), (x1, y1) = shape.p0, shape.c, shape.p1
            body.append(
                f'<path d="M{x0:g} {y0:g} Q{cx:g} {cy:g} {x1:g} {y1:g}" fill="none" '
                f'stroke="{shape.stroke}" stroke-width="{shape.width:g}" stroke-linecap="round"/>'
            )
        else:
            stops = "".join(
                f'<stop offset="{off:g}" stop-color="#{r:02x}{g:02x}{b:02x}" '
                f'stop-opacity="{alpha:g}"/>'
                for off, (r, g, b), alpha in HEAT_STOPS
            )
            defs.append(f'<radialGradient id="heat{i}">{stops}</radialGradient>')
            body.append(
                f'<circle cx="{shape.cx:g}" cy="{shape.cy:g}" r="{shape.r:g}" '
                f'fill="url(#heat{i})"/>'
            )
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CANVAS}" height="{CANVAS}" '
        f'viewBox="0 0 {CANVAS} {CANVAS}">',
        "<title>cxr-viewer</title>",
        f"<defs>{''.join(defs)}</defs>",
        *body,
        "</svg>",
    ]
    return "\n".join(lines) + "\n"


# ---- raster ----------------------------------------------------------------------------------


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _bezier(shape: Curve, steps: int = 48) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 1.0, steps)[:, None]
    p0, c, p1 = (np.asarray(p, dtype=float) for p in (shape.p0, shape.c, shape.p1))
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1
    return [(float(x), float(y)) for x, y in pts]


def _heat_layer(shape: HeatSpot, size: int, scale: float) -> Image.Image:
    """RGBA layer of the radial heat spot, interpolating ``HEAT_STOPS`` like SVG does."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dist = np.hypot((xx + 0.5) / scale - shape.cx, (yy + 0.5) / scale - shape.cy) / shape.r
    offsets = [s[0] for s in HEAT_STOPS]
    rgba = np.zeros((size, size, 4), dtype=np.float64)
    for ch in range(3):
        rgba[..., ch] = np.interp(dist, offsets, [s[1][ch] for s in HEAT_STOPS])
    rgba[..., 3] = np.interp(dist, offsets, [s[2] * 255 for s in HEAT_STOPS])
    rgba[dist > 1.0, 3] = 0.0
    return Image.fromarray(np.round(rgba).astype(np.uint8), "RGBA")


def render(px: int) -> Image.Image:
    """Rasterise the icon at ``px`` x ``px`` (RGBA), supersampled then downsampled."""
    size = px * max(2, min(8, MAX_SUPERSAMPLED // px))
    scale = size / CANVAS
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    # Everything but the background is clipped to the rounded square.
    clip = Image.new("L", (size, size), 0)
    frame = SHAPES[0]
    assert isinstance(frame, RoundedRect)
    ImageDraw.Draw(clip).rounded_rectangle(
        [frame.x0 * scale, frame.y0 * scale, frame.x1 * scale, frame.y1 * scale],
        radius=frame.radius * scale,
        fill=255,
    )
    content = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(content)
    for shape in SHAPES:
        if px < shape.min_px:
            continue
        if isinstance(shape, RoundedRect):
            draw.rounded_rectangle(
                [shape.x0 * scale, shape.y0 * scale, shape.x1 * scale, shape.y1 * scale],
                radius=shape.radius * scale,
                fill=_rgb(shape.fill),
            )
        elif isinstance(shape, Ellipse):
            draw.ellipse(
                [
                    (shape.cx - shape.rx) * scale,
                    (shape.cy - shape.ry) * scale,
                    (shape.cx + shape.rx) * scale,
                    (shape.cy + shape.ry) * scale,
                ],
                fill=_rgb(shape.fill),
            )
        elif isinstance(shape, Curve):
            pts = [(x * scale, y * scale) for x, y in _bezier(shape)]
            width = max(1, round(shape.width * scale))
            draw.line(pts, fill=_rgb(shape.stroke), width=width, joint="curve")
            radius = width / 2
            for x, y in (pts[0], pts[-1]):  # round caps, as stroke-linecap="round"
                draw.ellipse(
                    [x - radius, y - radius, x + radius, y + radius], fill=_rgb(shape.stroke)
                )
        else:
            content = Image.alpha_composite(content, _heat_layer(shape, size, scale))
            draw = ImageDraw.Draw(content)
    image.paste(content, (0, 0), clip)
    return image.resize((px, px), Image.Resampling.LANCZOS)


# ---- outputs ---------------------------------------------------------------------------------


def build_outputs() -> dict[str, bytes]:
    """Every committed icon file, relative to ``resources/icons/``, with its bytes."""
    files: dict[str, bytes] = {f"{NAME}.svg": to_svg().encode("utf-8")}
    rasters = {px: render(px) for px in PNG_SIZES}
    for px, image in rasters.items():
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=True)
        files[f"hicolor/{px}x{px}/apps/{NAME}.png"] = buf.getvalue()
    files[f"{NAME}.png"] = files[f"hicolor/256x256/apps/{NAME}.png"]
    buf = io.BytesIO()
    rasters[256].save(buf, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    files[f"{NAME}.ico"] = buf.getvalue()
    buf = io.BytesIO()
    render(1024).save(buf, format="ICNS")
    files[f"{NAME}.icns"] = buf.getvalue()
    return files


def stale_outputs(out_dir: Path, files: dict[str, bytes] | None = None) -> list[str]:
    """Names of the icon files in ``out_dir`` that are missing or differ from a fresh drawing.

    The SVG must match byte for byte; rasters must match pixel for pixel within 2 levels (PNG/ICO
    encoders and resampling may differ slightly between Pillow releases; the drawing may not).
    """
    files = build_outputs() if files is None else files
    stale = []
    for name, data in files.items():
        path = out_dir / name
        if not path.is_file():
            stale.append(name)
        elif name.endswith(".svg"):
            if path.read_bytes() != data:
                stale.append(name)
        else:
            with Image.open(path) as old, Image.open(io.BytesIO(data)) as new:
                same_size = old.size == new.size
                a = np.asarray(old.convert("RGBA"), dtype=np.int16)
                b = np.asarray(new.convert("RGBA"), dtype=np.int16)
            if not same_size or int(np.abs(a - b).max()) > 2:
                stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out, write nothing"
    )
    args = parser.parse_args(argv)
    files = build_outputs()
    if args.check:
        stale = stale_outputs(args.out, files)
        for name in stale:
            print(f"stale or missing: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for name, data in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path} ({len(data)} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
