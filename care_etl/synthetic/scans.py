"""Render typed referral-form text as a scanned page (PNG or image-only PDF).

The paper reader must do real OCR, so the synthetic scans carry what a bureau scan carries:
a slight skew, blur, paper tint, grain and specks. The damage is tuned so that Tesseract
still reads the form with the errors real scans give (0/O, 1/l, 5/S ...), not so much that
nothing can be read. The output is a pure function of (text, seed, suffix): no timestamps.
"""

from __future__ import annotations

import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

DPI = 150
PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
FONT_PX = 26  # about 12.5 pt at 150 dpi: an ordinary typed form
MARGIN_X = 110
MARGIN_Y = 140
LINE_SPACING = 1.7
_FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if _FONT_FILE.exists():
        return ImageFont.truetype(str(_FONT_FILE), size)
    return ImageFont.load_default(size=size)


def _wrap(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width_px: int
) -> list[str]:
    """Break long lines as a typist's carriage return would: values spill onto the next line."""
    chars = max(20, int(width_px // max(font.getlength("M"), 1.0)))
    lines: list[str] = []
    for line in text.splitlines():
        lines.extend(textwrap.wrap(line, chars, break_on_hyphens=False) or [""])
    return lines


def _typeset(text: str, rng: np.random.Generator) -> Image.Image:
    page = Image.new("L", PAGE_SIZE, 255)
    draw = ImageDraw.Draw(page)
    font = _font(FONT_PX)
    x = MARGIN_X + int(rng.integers(-25, 26))
    y = MARGIN_Y + int(rng.integers(-30, 31))
    ink = int(rng.integers(0, 60))
    for line in _wrap(text, font, PAGE_SIZE[0] - 2 * MARGIN_X):
        draw.text((x, y), line, fill=ink, font=font)
        y += int(FONT_PX * LINE_SPACING)
    return page


def _degrade(page: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Skew, optics blur, uneven toner, paper tint, sensor grain, dust specks, 5-bit depth."""
    angle = float(rng.uniform(0.4, 2.0) * rng.choice([-1.0, 1.0]))
    page = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 0.95))))
    ink = 1.0 - np.asarray(page, dtype=np.float32) / 255.0
    ink *= _low_frequency(rng, ink.shape, low=0.75, high=1.0)  # toner fades in patches
    paper = float(rng.uniform(228.0, 250.0))
    pixels = paper * (1.0 - ink)
    pixels += rng.normal(0.0, float(rng.uniform(1.5, 3.0)), ink.shape).astype(np.float32)
    specks = rng.random(ink.shape, dtype=np.float32) < 0.0005
    pixels[specks] = rng.uniform(0.0, 140.0, int(specks.sum())).astype(np.float32)
    # 32 grey levels, as a bureau's compressed scans keep: a PNG page stays near 0.5 MB.
    pixels = np.round(np.clip(pixels, 0, 255) / 8.0) * 8.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _low_frequency(
    rng: np.random.Generator, shape: tuple[int, ...], *, low: float, high: float
) -> np.ndarray:
    """A smooth random field in [low, high]: coarse noise blown up to the page size."""
    coarse = rng.uniform(low, high, (12, 9)).astype(np.float32)
    field = Image.fromarray(coarse).resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(field), low, high)


def render_scan(text: str, path: Path, *, seed: int) -> None:
    """Write `text` as a scanned A4 page to `path` (.png, or .pdf holding the page image)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".png", ".pdf"}:
        raise ValueError(f"{path}: a scan must be .png or .pdf, not {suffix or 'no suffix'}")
    rng = np.random.default_rng(seed)
    page = _degrade(_typeset(text, rng), rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        page.save(path, "PNG", dpi=(DPI, DPI))
    else:
        # Pillow stamps the current time and the file name into the PDF info unless told not to.
        page.save(
            path,
            "PDF",
            resolution=float(DPI),
            quality=85,
            title=None,
            creationDate=None,
            modDate=None,
        )
