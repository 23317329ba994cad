"""Tesseract OCR of scanned forms, with word confidences and a content-addressed cache.

OCR is the slow step of the paper source (a fraction of a second to seconds a page), and the
scans rarely change between runs, so each file's OCR output is cached under the SHA-256 of
its bytes: an unchanged scan is read once, a changed one is read again. The cache holds the
text of personal records: keep `cache_dir` under the same access control as the sources.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytesseract
from PIL import Image, ImageFilter, UnidentifiedImageError

from care_etl.errors import SourceReadError

log = logging.getLogger(__name__)

# Bump when preprocessing or Tesseract settings change: cached results of older code are ignored.
OCR_VERSION = "5"  # 2: upright; 3: transparent, 16-bit, bad dpi; 4: skew to 5 deg; 5: blank
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
PDF_SUFFIXES = frozenset({".pdf"})
MIN_DPI = 150.0  # below this, characters are too small for Tesseract: upscale
MAX_PDF_DPI = 300.0
DEFAULT_PDF_DPI = 200.0
A4_WIDTH_INCHES = 8.27
PAGE_WIDTH_INCHES = (3.5, 17.0)  # a recorded resolution giving a page outside this is wrong
TESSERACT_CONFIG = "--psm 4"  # one column of lines of text: the layout of a typed form
MAX_SKEW_DEGREES = 5.0  # a page fed in askew; 3 left pages at 3.5-4.5 degrees half-straightened

# How many files this process has sent to OCR (cache misses), pool workers included. Lets
# tests and benchmarks see that a cached scan was not read again, without timing anything.
ocr_runs = 0

Line = list[tuple[str, float]]  # one text line: (word, confidence 0..100)


@dataclass
class OcrResult:
    """Words of one file in reading order, grouped in lines; or why there are none."""

    lines: list[Line] = field(default_factory=list)
    error: str | None = None
    cacheable: bool = True

    @property
    def mean_confidence(self) -> float | None:
        """Mean word confidence 0..1 over the whole form, None when no word was read."""
        confs = [conf for line in self.lines for _, conf in line]
        return round(float(np.mean(confs)) / 100.0, 4) if confs else None

    def to_json(self) -> dict:
        return {"version": OCR_VERSION, "lines": self.lines, "error": self.error}

    @classmethod
    def from_json(cls, data: dict) -> OcrResult:
        lines = [[(str(w), float(c)) for w, c in line] for line in data["lines"]]
        return cls(lines=lines, error=data["error"])


class UnreadableImage(Exception):
    """The file is not an image or PDF we can render (the record is quarantined, not the run)."""


def is_scan(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in PDF_SUFFIXES


def check_tesseract(first_file: Path | str) -> None:
    """Fail the read with a clear message when the Tesseract binary is not there."""
    try:
        pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise SourceReadError(
            f"{first_file}: cannot OCR scans: Tesseract is not installed or not on PATH "
            "(install it with: apt-get install -y tesseract-ocr)"
        ) from exc


# --- images -------------------------------------------------------------------------------


def load_pages(path: Path) -> list[tuple[Image.Image, float]]:
    """Every page of the scan as a grayscale image at its own resolution (at least MIN_DPI)."""
    if path.suffix.lower() in PDF_SUFFIXES:
        return _pdf_pages(path)
    try:
        with Image.open(path) as im:
            pages = []
            for frame in range(getattr(im, "n_frames", 1)):
                im.seek(frame)
                dpi = _image_dpi(im)
                pages.append((_at_least_min_dpi(_grey(im), dpi), max(dpi, MIN_DPI)))
            return pages
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage("not a readable image") from exc


def _grey(image: Image.Image) -> Image.Image:
    """8-bit grayscale as the page looked on paper: Pillow's own convert("L") turned a
    transparent background black and clipped 16-bit scans to white (no text recognised)."""
    if image.mode in {"I", "F"} or image.mode.startswith("I;16"):
        return _eight_bit(np.asarray(image, dtype=np.float64))
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        paper.alpha_composite(rgba)
        return paper.convert("L")
    return image.convert("L")


def _eight_bit(pixels: np.ndarray) -> Image.Image:
    """Deep pixel values scaled down so the brightest (the paper) stays white."""
    peak = float(pixels.max()) if pixels.size else 0.0
    if peak > 255.0:
        pixels = pixels * (255.0 / peak)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _image_dpi(image: Image.Image) -> float:
    """The recorded resolution when it gives a page of paper's size, else that of an A4 page.

    Image tools often stamp 72 dpi whatever the scan: a 300 dpi page so stamped was taken for
    a thumbnail and upscaled to 625 dpi, 3.5 times the OCR time (measured), for nothing.
    """
    try:
        dpi = float(image.info["dpi"][0])
    except (KeyError, TypeError, ValueError, IndexError):
        dpi = 0.0
    if dpi > 0 and PAGE_WIDTH_INCHES[0] <= image.width / dpi <= PAGE_WIDTH_INCHES[1]:
        return dpi
    return image.width / A4_WIDTH_INCHES


def _at_least_min_dpi(image: Image.Image, dpi: float) -> Image.Image:
    """Upscale faxes and thumbnails; never resample a scan that is already fine enough."""
    if dpi <= 0 or dpi >= MIN_DPI * 0.9:
        return image
    factor = MIN_DPI / dpi
    return image.resize(
        (round(image.width * factor), round(image.height * factor)), Image.Resampling.BICUBIC
    )


def _pdf_pages(path: Path) -> list[tuple[Image.Image, float]]:
    import pypdfium2 as pdfium  # imported here: only PDF scans need it

    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise UnreadableImage("not a readable PDF") from exc
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            dpi = _pdf_scan_dpi(page)
            pages.append((page.render(scale=dpi / 72.0, grayscale=True).to_pil().convert("L"), dpi))
    except pdfium.PdfiumError as exc:
        raise UnreadableImage("not a readable PDF") from exc
    finally:
        pdf.close()
    if not pages:
        raise UnreadableImage("not a readable PDF")
    return pages


def _pdf_scan_dpi(page: object) -> float:
    """Render at the embedded scan's own resolution (within MIN..MAX_PDF_DPI).

    Measured on 16 synthetic 150 dpi scans: rendering them at 300 dpi blew the grain up into
    blobs (field accuracy 0.90 -> 0.74); blurring to compensate restored it at 3x the time.
    """
    import pypdfium2.raw as pdfium_c

    best = 0.0
    for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):  # type: ignore[attr-defined]
        left, _, right, _ = obj.get_bounds()
        if right - left > 1:
            best = max(best, obj.get_px_size()[0] * 72.0 / (right - left))
    if best == 0.0:
        return DEFAULT_PDF_DPI  # a typed (vector) PDF: any resolution reads well
    return min(max(best, MIN_DPI), MAX_PDF_DPI)


def preprocess(image: Image.Image, dpi: float = MIN_DPI) -> Image.Image:
    """Grayscale, soften specks, straighten: what measurably helped Tesseract here.

    Measured on 30 synthetic forms: straightening lifted field accuracy from 0.83 to 0.89
    (skewed lines were split and misordered); contrast stretching (autocontrast) amplified
    the grain and dropped it to 0.63, so it is not done.
    """
    image = image.convert("L").filter(ImageFilter.GaussianBlur(0.7 * dpi / MIN_DPI))
    angle = estimate_skew(image)
    if abs(angle) >= 0.2:
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    return image


def estimate_skew(image: Image.Image) -> float:
    """Angle (degrees) that straightens the text lines, by a projection-profile search.

    Rows of a straight page alternate between ink and paper, so the row sums change most
    sharply at the right angle. Done on a small binarised copy: a few tens of milliseconds.
    """
    small = image.reduce(max(1, image.width // 600))
    ink = (np.asarray(small) < 128).astype(np.uint8) * 255
    if ink.mean() < 0.1:  # blank page: nothing to straighten
        return 0.0
    ink_image = Image.fromarray(ink)

    def sharpness(angle: float) -> float:
        rows = np.asarray(ink_image.rotate(angle, resample=Image.Resampling.NEAREST)).sum(axis=1)
        return float(np.square(np.diff(rows.astype(np.float64))).sum())

    coarse = np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 0.01, 0.5)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 0.4, best + 0.41, 0.1)
    return round(float(max(fine, key=sharpness)), 2)


def ocr_image(image: Image.Image, dpi: float = MIN_DPI) -> list[Line]:
    """Tesseract's words and confidences, grouped into the lines it found."""
    data = pytesseract.image_to_data(
        image,
        lang="eng",
        config=f"{TESSERACT_CONFIG} --dpi {round(dpi)}",
        output_type=pytesseract.Output.DICT,
    )
    lines: dict[tuple[int, int, int], Line] = {}
    for i, text in enumerate(data["text"]):
        conf = float(data["conf"][i])
        word = str(text).strip()
        if not word or conf < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).append((word, round(conf, 2)))
    return list(lines.values())


#: A page read at a mean word confidence (0..1) below this (a typed form reads at about 0.9;
#: upside down at about 0.3; on its side, no words at all) may be turned: Tesseract's
#: orientation detection is asked, at about a second a page, only then.
POOR_CONFIDENCE = 0.5


def upright_lines(image: Image.Image, dpi: float) -> list[Line]:
    """The page's lines, read again turned upright when it reads poorly and Tesseract's
    orientation detection says it lies on its side or upside down (a form fed into the
    scanner the wrong way round was quarantined as "no text recognised")."""
    page = preprocess(image, dpi)
    if _is_blank(page):
        return []
    lines = ocr_image(page, dpi)
    read = OcrResult(lines=lines).mean_confidence or 0.0
    if read >= POOR_CONFIDENCE:
        return lines
    turn = _orientation(page)
    if not turn:
        return lines
    turned = ocr_image(preprocess(image.rotate(-turn, expand=True, fillcolor=255), dpi), dpi)
    return turned if (OcrResult(lines=turned).mean_confidence or 0.0) > read else lines


#: Share of a page darker than its paper below which it holds no form: a typed form inks
#: about 1% (0.85-1.3% measured over fonts, sizes and scanners), a blank page with specks
#: 0.03%. Tesseract spent 6 s reading nothing on such a page, and its orientation detection
#: (called as nothing was read) 9 s more to say "upside down" and read it again.
BLANK_INK = 0.0005


def _is_blank(page: Image.Image) -> bool:
    """A page with no writing (a duplex scan's back): nothing for Tesseract to read."""
    pixels = np.asarray(page)
    return float((pixels < np.median(pixels) - 60).mean()) < BLANK_INK


def _orientation(image: Image.Image) -> int:
    """Degrees (0, 90, 180, 270) Tesseract would turn the page by to set it upright; 0 when
    it cannot tell (too few characters: a blank page)."""
    try:
        found = pytesseract.image_to_osd(image, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError:
        return 0
    return int(found.get("rotate", 0)) % 360


@contextlib.contextmanager
def _single_threaded_tesseract() -> Iterator[None]:
    """Tesseract's OpenMP threads make one page slower (0.3 s -> 1.8 s measured): switch off."""
    if "OMP_THREAD_LIMIT" in os.environ:
        yield
        return
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        yield
    finally:
        os.environ.pop("OMP_THREAD_LIMIT", None)


def ocr_file(path: Path) -> OcrResult:
    """OCR every page of one scan; an unreadable file gives an error result, not an exception."""
    try:
        pages = load_pages(path)
    except UnreadableImage as exc:
        return OcrResult(error=str(exc))
    lines: list[Line] = []
    try:
        with _single_threaded_tesseract():
            for image, dpi in pages:
                lines.extend(upright_lines(image, dpi))
    except pytesseract.TesseractError as exc:
        # Tesseract crashed on this page: report it on the record, and try again next run.
        return OcrResult(error=f"OCR failed (Tesseract exit status {exc.status})", cacheable=False)
    if not lines:
        return OcrResult(error="no text recognised")
    return OcrResult(lines=lines)


# --- cache and pool -----------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes: the cache key, so a renamed scan is still a cache hit."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise SourceReadError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def _cache_get(cache_dir: Path | None, digest: str) -> OcrResult | None:
    if cache_dir is None:
        return None
    try:
        data = json.loads((cache_dir / f"{digest}.json").read_text(encoding="utf-8"))
        if data.get("version") == OCR_VERSION:
            return OcrResult.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or damaged entry: OCR again
    return None


def _cache_put(cache_dir: Path | None, digest: str, result: OcrResult) -> None:
    if cache_dir is None:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(result.to_json(), f, ensure_ascii=False)
        os.replace(tmp, cache_dir / f"{digest}.json")  # atomic: readers never see half a file
    except OSError as exc:  # a cache that cannot be written slows the next run, nothing worse
        log.warning("OCR cache %s not written: %s", cache_dir, exc.strerror or exc)


def ocr_files(
    paths: Sequence[Path],
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[OcrResult]:
    """OCR results for `paths` in order, from the cache where the file is unchanged."""
    global ocr_runs
    digests = [file_digest(p) for p in paths]
    results: list[OcrResult | None] = [_cache_get(cache_dir, d) for d in digests]
    for result in results:
        if result is not None and on_done:
            on_done()
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results  # type: ignore[return-value]
    check_tesseract(paths[todo[0]])
    ocr_runs += len(todo)
    for i, result in zip(todo, _run(paths, todo, workers), strict=True):
        results[i] = result
        if result.cacheable:
            _cache_put(cache_dir, digests[i], result)
        if on_done:
            on_done()
    return results  # type: ignore[return-value]


def _run(paths: Sequence[Path], todo: list[int], workers: int | None) -> Iterator[OcrResult]:
    """Yield results in `todo` order: in this process for one scan, else in a process pool."""
    workers = min(workers or os.cpu_count() or 1, len(todo))
    if workers <= 1:
        for i in todo:
            yield ocr_file(paths[i])
        return
    # spawn, not fork: the caller (Dagster) runs threads, and forking a threaded process is
    # unsafe. Like any spawn pool, it needs the calling script to guard `if __name__ == ...`.
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(pytesseract.pytesseract.tesseract_cmd,),
    ) as pool:
        yield from pool.map(ocr_file, [paths[i] for i in todo])


def _init_worker(tesseract_cmd: str) -> None:
    """Spawned workers start from scratch: give them the caller's Tesseract binary."""
    pytesseract.pytesseract.tesseract_cmd = tesseract_cmd
