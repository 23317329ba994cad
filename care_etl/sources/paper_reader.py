"""Read digitised paper referral forms (PNG/PDF scans through Tesseract, or bureau .txt).

OCR text is untrustworthy by nature, so the reader tolerates misread labels (fuzzy matching),
values broken onto the next line and the usual character confusions in dates and numbers, and
says how sure it is: a confidence per record and per field. A file that cannot be read at all
still gives a row, with `_read_error` set, so that it is quarantined downstream, never lost; the
checks leave it out (it has no fields to judge) and `read_errors` names its file in the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
from rapidfuzz import fuzz

from care_etl.errors import SourceReadError
from care_etl.sources.ocr import Line, OcrResult, is_scan, ocr_files

KINDS = frozenset({"text", "date", "digits", "postcode"})
LINEAGE_COLUMNS = [
    "_file",
    "_row",
    "_record_id",
    "_ocr_confidence",
    "_field_confidence",
    "_read_error",
]
COLON_MATCH = 65.0  # a prefix before ':' is very likely a label: accept a looser match
WORDS_MATCH = 80.0  # no colon: the first words must look much more like a label
REPAIRED = 0.8  # a value whose characters were repaired is less certain
UNPARSED = 0.5  # a date or number that does not have the expected shape

# Characters OCR reads in place of digits (typewriter and sans faces).
_DIGIT_FIX = str.maketrans(
    {
        "O": "0", "o": "0", "Q": "0", "D": "0",
        "I": "1", "l": "1", "i": "1", "|": "1", "!": "1",
        "Z": "2", "z": "2",
        "S": "5", "s": "5",
        "G": "6", "b": "6",
        "T": "7",
        "B": "8",
        "g": "9", "q": "9",
    }
)  # fmt: skip
# What may stand for a digit: kept when trimming specks off the ends of a number.
_DIGIT_LIKE = frozenset("0123456789") | {chr(code) for code in _DIGIT_FIX}
# ... and in place of letters, inside a label.
_LABEL_FIX = str.maketrans({"0": "o", "1": "l", "5": "s", "8": "b", "|": "l"})
# Specks and margins come out as punctuation at the ends of a value.
_EDGE_NOISE = " :;|_~.,'\"`\u2018\u2019\u201c\u201d\u2014\u2013-"
#: Called with (forms done, forms in all) when read_paper is given no `progress` of its own:
#: the command line sets it to draw a bar while Dagster runs the paper source's asset.
progress_hook: Callable[[int, int], None] | None = None


@dataclass
class _Field:
    label_score: float  # 0..100
    label_confs: list[float]
    words: list[str] = field(default_factory=list)
    confs: list[float] = field(default_factory=list)


def read_paper(
    files: Sequence[Path],
    labels: Mapping[str, str],
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One raw record per form: a column per label (text or None) plus lineage and confidences.

    `labels` maps each form label to its kind: text, date, digits or postcode. Scans are OCRed
    in a pool of `workers` processes and cached under `cache_dir` by content hash.
    """
    bad = {kind for kind in labels.values() if kind not in KINDS}
    if bad:
        raise ValueError(f"unknown label kinds {sorted(bad)}; expected one of {sorted(KINDS)}")
    paths = [Path(f) for f in files]
    progress = progress or progress_hook
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, len(paths))

    scans = [p for p in paths if is_scan(p)]
    scan_results = dict(
        zip(
            scans, ocr_files(scans, cache_dir=cache_dir, workers=workers, on_done=tick), strict=True
        )
    )
    rows = []
    for path, name in zip(paths, files, strict=True):
        if path in scan_results:
            rows.append(_record(name, path, scan_results[path], labels, ocr=True))
        else:
            rows.append(_record(name, path, _read_text(path), labels, ocr=False))
            tick()
    # the match caches hold the first words of form lines: personal data, kept no longer
    _colon_scores.cache_clear()
    _word_matches.cache_clear()
    # dtype=object keeps None as None (pandas would turn a missing confidence into NaN)
    df = pd.DataFrame(rows, columns=[*labels, *LINEAGE_COLUMNS], dtype=object)
    return df.astype({"_row": "int64"})


def read_errors(frame: pd.DataFrame) -> list[str]:
    """One line per form that could not be read: its file and why, in the reader's fixed words
    (never a value). Its record is not indexed: quarantined with that reason, or held back
    with the rest of the feed when a check blocks it (so the line says neither); without this
    line the run would not name the file."""
    failed = frame[frame["_read_error"].notna()]
    return [
        f"{file}: {reason}; not indexed"
        for file, reason in zip(failed["_file"], failed["_read_error"], strict=True)
    ]


def _read_text(path: Path) -> OcrResult:
    """A bureau's OCR output in UTF-8, UTF-16 or Windows-1252 (`_decode`); no word confidences
    (100 as neutral)."""
    if path.suffix.lower() != ".txt":
        return OcrResult(error=f"unsupported file type {path.suffix or '(none)'}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceReadError(f"{path}: cannot read file ({exc.strerror})") from exc
    lines = [[(w, 100.0) for w in line.split()] for line in _decode(raw).splitlines()]
    lines = [line for line in lines if line]
    return OcrResult(lines=lines) if lines else OcrResult(error="no text recognised")


def _decode(raw: bytes) -> str:
    """UTF-16 (as Windows Notepad saves "Unicode"), UTF-8 with or without BOM, else
    Windows-1252. UTF-16 read as a single-byte text kept a NUL between letters: the labels
    still matched, so the values came through as garbage at full confidence."""
    encoding = _utf16(raw)
    if encoding:
        return raw.decode(encoding, errors="replace").lstrip("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _utf16(raw: bytes) -> str | None:
    """UTF-16 by its BOM, or without one by the NUL high byte of every ASCII character."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    even, odd = raw[0::2], raw[1::2]
    if len(raw) < 4 or len(raw) % 2:
        return None
    if odd.count(0) > 0.6 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _record(
    name: Path | str, path: Path, result: OcrResult, labels: Mapping[str, str], *, ocr: bool
) -> dict:
    row: dict = {label: None for label in labels}
    row.update(
        _file=str(name),
        _row=1,
        _record_id=path.stem,
        _ocr_confidence=result.mean_confidence if ocr else None,
        _field_confidence=None,
        _read_error=result.error,
    )
    if result.error:
        return row
    fields = parse_form(result.lines, labels)
    if not fields:
        row["_read_error"] = "no form labels found"
        return row
    confidence = {}
    for label, kind in labels.items():
        found = fields.get(label)
        if found is None:
            confidence[label] = 0.0
            continue
        row[label], factor = parse_value(" ".join(found.words), kind)
        word_confs = found.confs or found.label_confs
        ocr_conf = sum(word_confs) / len(word_confs) / 100.0 if (ocr and word_confs) else 1.0
        confidence[label] = round(found.label_score / 100.0 * ocr_conf * factor, 3)
    row["_field_confidence"] = json.dumps(confidence)
    return row


# --- form layout --------------------------------------------------------------------------


def parse_form(lines: Sequence[Line], labels: Mapping[str, str]) -> dict[str, _Field]:
    """Find each label's line (fuzzy), then give every other line to the value above it.

    Labels go to lines best match first, so a title misread as `REFERRAL:` cannot take
    `Referrer` from the real `Referrer:` line further down.
    """
    known = _labels_of(tuple(labels))
    candidates = [
        (score, i, label, label_words, value)
        for i, line in enumerate(lines)
        for label, score, label_words, value in _label_candidates(line, known)
    ]
    candidates.sort(key=lambda c: (-c[0], c[1]))  # best match first; the earlier line on a tie
    by_line: dict[int, tuple[str, _Field]] = {}
    taken: set[str] = set()
    for score, i, label, label_words, value in candidates:
        if i not in by_line and label not in taken:
            by_line[i] = (label, _field(score, label_words, value))
            taken.add(label)
    fields: dict[str, _Field] = {}
    current: str | None = None
    for i, line in enumerate(lines):
        if i in by_line:
            current, fld = by_line[i]
            fields[current] = fld
        elif _other_label(line):
            current = None
        elif current is not None and _continues(fields[current], labels[current], line):
            fields[current].words.extend(w for w, _ in line)
            fields[current].confs.extend(c for _, c in line)
    return fields


def _other_label(line: Line) -> bool:
    """Does the line start with a label the contract does not read (`Telephone:`, `GP:`)?

    Such a line ends the value above: it ran on into it (a phone number in the address) at
    the confidence of the field it spoiled.
    """
    prefix = []
    for word, _ in line[:3]:
        head, colon, _ = word.partition(":")
        prefix.append(head)
        if colon:
            return bool(_OTHER_LABEL.fullmatch(" ".join(prefix).strip()))
    return False


_OTHER_LABEL = re.compile(r"[A-Za-z][A-Za-z./-]*(?: [A-Za-z][A-Za-z./-]*)*")


def _continues(fld: _Field, kind: str, line: Line) -> bool:
    """Is this unlabelled line the rest of the value above it (not speckle noise)?

    Free text takes any line with letters or digits; a date, number or postcode only a line
    that completes it, so noise under a complete date cannot spoil it.
    """
    if sum(ch.isalnum() for word, _ in line for ch in word) < 2:
        return False
    if kind == "text" or not fld.words:
        return True
    words = " ".join(w for w, _ in line)
    before = " ".join(fld.words)
    if kind == "postcode":
        return sum(ch.isalnum() for ch in before) < 5
    if kind == "digits" and parse_value(words, kind)[1] == 1.0:
        return True
    factor = parse_value(before, kind)[1]
    return factor < 1.0 and parse_value(f"{before} {words}", kind)[1] > factor


@lru_cache(maxsize=1 << 14)  # the labels are normalised for every line of every form
def _norm_label(text: str) -> str:
    """Lower case, look-alike digits as letters, `rn` as `m`; other digits stay and count
    against a match, so a value's digits never pass for part of a label."""
    text = text.translate(_LABEL_FIX).lower().replace("rn", "m")
    text = " ".join(_NOT_LABEL.sub("", text).split())
    return _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(0).replace(" ", "")], text)


_NOT_LABEL = re.compile(r"[^a-z0-9 ]+")
#: Forms print the same label in long and short forms: `D.O.B.` was no `Date of Birth`, and
#: `NHS Number` no `NHS No`, so their lines ran on into the field above at full confidence.
_ABBREVIATIONS = {"dob": "date of birth", "number": "no", "num": "no", "nbr": "no"}
_ABBREVIATION = re.compile(r"\b(?:d o b|dob|number|num|nbr)\b")


@dataclass(frozen=True, eq=False)  # one per label set (_labels_of): hashed by identity
class _Labels:
    """The form's labels, normalised once: every line of every form is matched against them."""

    names: tuple[str, ...]
    norms: tuple[str, ...]
    word_counts: tuple[int, ...]
    max_words: int  # a colon further along than this cannot end a label


@lru_cache(maxsize=64)
def _labels_of(names: tuple[str, ...]) -> _Labels:
    counts = tuple(len(name.split()) for name in names)
    norms = tuple(_norm_label(name) for name in names)
    return _Labels(names, norms, counts, max(counts) + 2)


#: A label a line may start with: the label, its score, the line's words that make it up and
#: the words that would be its value.
_Candidate = tuple[str, float, Line, Line]


def _label_candidates(line: Line, labels: _Labels) -> list[_Candidate]:
    """Every label this line might start with, each with the value words that would follow."""
    if not line:
        return []
    found = _match_by_colon(line, labels)
    return found if found else _match_by_words(line, labels)


def _match_by_colon(line: Line, labels: _Labels) -> list[_Candidate]:
    for i, (word, conf) in enumerate(line[: labels.max_words]):
        if ":" in word:  # ':' wins over an earlier ';' in the same word
            cut = word.index(":")
        elif ";" in word:
            cut = word.index(";")
        else:
            continue
        scores = _colon_scores(" ".join([w for w, _ in line[:i]] + [word[:cut]]), labels)
        if not scores:
            return []
        rest = word[cut + 1 :]
        value = [*([(rest, conf)] if rest else []), *line[i + 1 :]]
        label_words = line[: i + 1]
        return [(label, score, label_words, value) for label, score in scores]
    return []


@lru_cache(maxsize=1 << 14)  # the same few label texts start most lines of every form
def _colon_scores(prefix: str, labels: _Labels) -> tuple[tuple[str, float], ...]:
    """The labels a prefix before a colon may be, with their scores (in label order)."""
    return tuple((n, s) for n, s in _scores(prefix, labels) if s >= COLON_MATCH)


def _match_by_words(line: Line, labels: _Labels) -> list[_Candidate]:
    words = tuple(w for w, _ in line[: labels.max_words - 1])
    return [
        (label, score, line[:take], line[take:])
        for label, score, take in _word_matches(words, labels)
    ]


@lru_cache(maxsize=1 << 14)
def _word_matches(words: tuple[str, ...], labels: _Labels) -> tuple[tuple[str, float, int], ...]:
    """Per label that the first words match well enough: its score and how many words it takes.

    `words` are the line's first words: as many as the longest label has, and one more.
    """
    found = []
    for label, norm, n in zip(labels.names, labels.norms, labels.word_counts, strict=True):
        best: tuple[float, int] = (0.0, 0)
        for take in range(max(1, n - 1), min(n + 1, len(words)) + 1):
            score = _ratio(_norm_label(" ".join(words[:take])), norm)
            if score > best[0]:  # on a tie, the fewer words: the rest is the value
                best = (score, take)
        if best[0] >= WORDS_MATCH:
            found.append((label, *best))
    return tuple(found)


def _scores(prefix: str, labels: _Labels) -> list[tuple[str, float]]:
    norm = _norm_label(prefix)
    return [
        (name, _ratio(norm, label)) for name, label in zip(labels.names, labels.norms, strict=True)
    ]


def _ratio(norm: str, label: str) -> float:
    return fuzz.ratio(norm, label) if norm else 0.0


def _field(score: float, label_words: Line, value: Line) -> _Field:
    value = [(w, c) for w, c in value if w]
    return _Field(
        label_score=score,
        label_confs=[c for _, c in label_words],
        words=[w for w, _ in value],
        confs=[c for _, c in value],
    )


# --- values -------------------------------------------------------------------------------


def parse_value(text: str, kind: str) -> tuple[str | None, float]:
    """The value as text (None when blank) and a confidence factor for how it was repaired."""
    text = " ".join(text.split()).strip(_EDGE_NOISE)
    if not text:
        return None, 1.0
    if kind == "date":
        return parse_date(text)
    if kind == "digits":
        return parse_digits(text)
    if kind == "postcode":
        return parse_postcode(text), 1.0
    return text, 1.0


def _trim_to_digits(text: str) -> tuple[str, bool]:
    """Drop specks read as letters at either end of a number (`28/11/2004é`)."""
    keep = _DIGIT_LIKE
    start, end = 0, len(text)
    while start < end and text[start] not in keep:
        start += 1
    while end > start and text[end - 1] not in keep:
        end -= 1
    return text[start:end], (start, end) != (0, len(text))


def parse_digits(text: str) -> tuple[str, float]:
    """Digits with OCR look-alikes repaired and spacing removed (`943 476 5919` -> 10 digits)."""
    compact, trimmed = _trim_to_digits(re.sub(r"[\s\-.,/]", "", text))
    fixed = compact.translate(_DIGIT_FIX)
    if not _is_digits(fixed):
        return text, UNPARSED
    return fixed, (1.0 if fixed == compact and not trimmed else REPAIRED)


def parse_date(text: str) -> tuple[str, float]:
    """A DD/MM/YYYY date with look-alikes repaired; day/month ranges are not judged here.

    What cannot be read as a date is returned as read, for standardisation to reject visibly.
    """
    compact, trimmed = _trim_to_digits(re.sub(r"\s+", "", text))
    parts = [p for p in re.split(r"[\\/\-.,]", compact) if p]
    if len(parts) == 3:
        fixed = [p.translate(_DIGIT_FIX) for p in parts]
        if all(map(_is_digits, fixed)) and len(fixed[2]) == 4 and max(map(len, fixed[:2])) <= 2:
            # the form types DD/MM: a one-digit day or month means a character was lost
            clean = fixed == parts and not trimmed and len(fixed[0]) == len(fixed[1]) == 2
            return "/".join(fixed), (1.0 if clean else REPAIRED)
    recovered = _date_from_digits(compact)
    return (recovered, REPAIRED) if recovered else (text, UNPARSED)


def _date_from_digits(compact: str) -> str | None:
    """A date whose slashes were lost or misread as 1/l/I: recover it from the digit run."""
    stripped = re.sub(r"[\\/\-.,]", "", compact)
    digits = stripped.translate(_DIGIT_FIX)
    if not _is_digits(digits):
        return None
    if len(digits) == 10 and digits[2] == digits[5] == "1" and stripped[2] in "1lI|":
        digits = digits[:2] + digits[3:5] + digits[6:]
    if len(digits) == 8:
        return f"{digits[:2]}/{digits[2:4]}/{digits[4:]}"
    return None


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_postcode(text: str) -> str:
    """Punctuation and stray spaces removed; letter/digit repair is left to standardisation.

    Currency signs are the exception: they are misread capital Es, not punctuation.
    """
    text = text.replace("£", "E").replace("€", "E")
    cleaned = " ".join(re.sub(r"[^0-9A-Za-z ]+", "", text).split())
    parts = cleaned.split(" ")
    if len(parts) == 2 and len(parts[1]) == 3:
        return cleaned
    return cleaned.replace(" ", "")
