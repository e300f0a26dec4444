"""How trustworthy a page's text layer is, and repair of mojibake from a wrong single-byte encoding.

`assess(text)` looks at the letter runs of a page and returns a `PageQuality` with a verdict:

- ``ok``: reads like language (most letter runs are word-like: one script, a sane case pattern, a vowel);
- ``empty``: (almost) no letters;
- ``mojibake``: most letters are Latin-1 accented letters (``ÇÀÊÎÍ ÊÞÐÈ``: Cyrillic cp1251 bytes read as
  Latin-1/WinAnsi, a font without a ToUnicode map) or ftfy sees UTF-8 read as cp1252 (``Ð—Ð°ÐºÐ¾Ð½``);
- ``replacement_chars``: U+FFFD, private-use or control characters where glyphs had no Unicode mapping;
- ``broken_spacing``: words cut by stray spaces (``Accelerato r F acilit y``, TeX Type3 bitmap fonts);
- ``garbage``: few word-like runs (a poor hidden OCR layer, or a page of equations and numbers: the caller
  decides, by whether the page is covered by an image, whether OCR can do better).

`repair_mojibake(text)` returns the repaired text and how (``cp1251-as-latin1``, ``koi8r-as-latin1``,
``ftfy``) when a repair scores better than the original, else None. ftfy fixes UTF-8 decoded as cp1252/Latin-1
but not a single-byte Cyrillic code page decoded as Latin-1 (there is no UTF-8 structure to recognise), so that
case is re-encoded here (Latin-1/cp1252 -> the Cyrillic code page) and kept only when it scores better.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_RUN = re.compile(r"[^\W\d_]+")  # letter runs
_LATIN1_LETTER = re.compile(r"[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]")
_BAD_CHARS = re.compile(r"[\ufffd\ue000-\uf8ff\x00-\x08\x0b\x0c\x0e-\x1f]")
_UTF8_AS_CP1252 = re.compile(r"[\u00c2-\u00f4][\u0080-\u00bf\u0152-\u0178\u2013-\u203a\u20ac\u2122\u02c6\u02dc]|â€")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_VOWELS = set("aeiouyAEIOUYàáâãäåæèéêëìíîïòóôõöøùúûüýÿÀÁÂÃÄÅÆÈÉÊËÌÍÎÏÒÓÔÕÖØÙÚÛÜÝаеёиоуыэюяАЕЁИОУЫЭЮЯіїєІЇЄ")
# single-letter words that are common in running text (so they are no sign of broken spacing)
_SINGLE_WORDS = "aAIоОвВсСкКуУиИяЯàáéóèúy"
# a stray capital before a lowercase fragment ("F acilit"), a stray letter after a word ("Accelerato r");
# initials ("D. P. Fraser") and the common single-letter words are not counted
_BROKEN = re.compile(
    rf"(?<![\w.\-])(?:[^\W\d_a-zа-я{_SINGLE_WORDS}](?= [a-zа-я]{{2,}})|"
    rf"(?<=[a-zа-я]{{2}} )[^\W\d_{_SINGLE_WORDS}](?![\w.\-]))"
)

SAMPLE_CHARS = 1600  # a longer page is judged on its middle 1600 characters (the check runs on every page)
MIN_LETTERS = 40  # below this a page is "empty": too little to judge
WORD_SHARE_OK = 0.62  # share of letter runs that are word-like, below it the page is "garbage"
MOJIBAKE_SHARE = 0.35  # share of letters that are Latin-1 accented letters
BAD_CHAR_SHARE = 0.05  # share of characters with no Unicode mapping
BROKEN_SPACING_SHARE = 0.15  # share of runs that are stray single letters or cut-off fragments


@dataclass(frozen=True)
class PageQuality:
    letters: int  # of the sample judged
    runs: int
    word_share: float
    mojibake_share: float
    bad_char_share: float
    broken_share: float
    verdict: str

    @property
    def score(self) -> float:
        """One number to compare two readings of a page (higher is better)."""
        if self.letters == 0:
            return 0.0
        penalty = (1 - min(1.0, self.mojibake_share * 2)) * (1 - min(1.0, self.bad_char_share * 5))
        return self.word_share * penalty * (1 - min(1.0, self.broken_share * 2))


def _script(run: str) -> str:
    cyr = len(_CYRILLIC.findall(run))
    if cyr == len(run):
        return "cyr"
    if cyr == 0 and len(_LATIN.findall(run)) == len(run):
        return "lat"
    return "mixed" if cyr else "other"


@functools.lru_cache(maxsize=1 << 16)  # words repeat: a cache hit costs a fraction of the check
def _word_like(run: str) -> bool:
    if len(run) < 2 or len(run) > 30:
        return False
    script = _script(run)
    if script == "mixed":
        return False
    if script == "other":  # Greek, CJK, ...: not judged here
        return True
    if not (run.islower() or run.isupper() or (run[0].isupper() and run[1:].islower())):
        return False  # "CTangapThaaune", "yCTaHoaneHs": OCR with the wrong language, or junk
    return len(run) <= 3 or any(ch in _VOWELS for ch in run)


def assess(text: str) -> PageQuality:
    if len(text) > SAMPLE_CHARS:
        middle = len(text) // 2
        text = text[middle - SAMPLE_CHARS // 2 : middle + SAMPLE_CHARS // 2]
    runs = _RUN.findall(text)
    letters = sum(map(len, runs))
    nonspace = len(text) - text.count(" ") - text.count("\n")
    bad = len(_BAD_CHARS.findall(text))
    bad_share = bad / nonspace if nonspace else 0.0
    if letters < MIN_LETTERS:
        verdict = "replacement_chars" if bad >= MIN_LETTERS else "empty"
        return PageQuality(letters, len(runs), 0.0, 0.0, bad_share, 0.0, verdict)
    latin1 = len(_LATIN1_LETTER.findall(text))
    mojibake = latin1 / letters
    if mojibake < MOJIBAKE_SHARE and _UTF8_AS_CP1252.search(text):
        mojibake = max(mojibake, _ftfy_share(text))
    long_runs = [r for r in runs if len(r) >= 2]
    word_share = sum(map(_word_like, long_runs)) / len(long_runs) if long_runs else 0.0
    broken = len(_BROKEN.findall(text)) / len(runs)
    if bad_share >= BAD_CHAR_SHARE:
        verdict = "replacement_chars"
    elif mojibake >= MOJIBAKE_SHARE:
        verdict = "mojibake"
    elif broken >= BROKEN_SPACING_SHARE and len(runs) >= 30:
        verdict = "broken_spacing"
    elif word_share < WORD_SHARE_OK:
        verdict = "garbage"
    else:
        verdict = "ok"
    return PageQuality(
        letters, len(runs), round(word_share, 3), round(mojibake, 3), round(bad_share, 3), round(broken, 3), verdict
    )


def _ftfy_share(text: str) -> float:
    """Share of the text that ftfy changes when it fixes encoding errors (0 when ftfy is not installed)."""
    try:
        import ftfy
    except ImportError:
        return 0.0
    fixed = ftfy.fix_encoding(text)
    if fixed == text:
        return 0.0
    return min(1.0, (len(text) - len(fixed)) / max(1, len(fixed)) * 2 + 0.01)


def _single_byte_table(codec: str) -> dict[int, str]:
    """Latin-1 and cp1252 characters -> what the same byte means in `codec`, where that is a Cyrillic letter."""
    table: dict[int, str] = {}
    for byte in range(0x80, 0x100):
        target = bytes([byte]).decode(codec, errors="replace")
        if not (_CYRILLIC.match(target) or target == "№"):
            continue
        for source_codec in ("latin-1", "cp1252"):
            source = bytes([byte]).decode(source_codec, errors="ignore")
            if source:
                table[ord(source)] = target
    return table


_TABLES = {
    name: _single_byte_table(codec)
    for name, codec in (("cp1251-as-latin1", "cp1251"), ("koi8r-as-latin1", "koi8_r"), ("cp866-as-latin1", "cp866"))
}


def repair_mojibake(text: str) -> tuple[str, str] | None:
    """The text repaired and how, when a repair reads better than the text as it is; else None."""
    before = assess(text)
    best: tuple[float, str, str] | None = None
    candidates: list[tuple[str, str]] = [(name, text.translate(table)) for name, table in _TABLES.items()]
    try:
        import ftfy
    except ImportError:
        pass
    else:
        fixed = ftfy.fix_text(text, normalization="NFC")
        if fixed != text:
            candidates.append(("ftfy", fixed))
    for how, candidate in candidates:
        quality = assess(candidate)
        if quality.verdict == "ok" and quality.score > before.score + 0.05:
            if best is None or quality.score > best[0]:
                best = (quality.score, how, candidate)
    return (best[2], best[1]) if best else None


def apply_repair(text: str, how: str) -> str:
    """Apply the repair `repair_mojibake` chose for a page to a piece of that page (a line)."""
    if how in _TABLES:
        return text.translate(_TABLES[how])
    if how == "ftfy":
        import ftfy

        return ftfy.fix_text(text, normalization="NFC")
    raise ValueError(f"unknown repair {how!r}")
