"""Language of a paper's body, offline: py3langid (langid.py's model, shipped in the wheel, no download) on a few
samples spread over the body, majority vote. A German paper with an English abstract is `de`, not `en`.

Without py3langid installed, the old rule: `ru` when Cyrillic letters dominate, else `en`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")
_LETTERS = re.compile(r"[^\W\d_]")
_NOISE = re.compile(r"https?://\S+|\S+@\S+|[\d\W_]+(?=\s)")
SAMPLE_CHARS = 1200
SAMPLES = 3
TESSERACT_CODES = {
    "en": "eng",
    "ru": "rus",
    "de": "deu",
    "fr": "fra",
    "es": "spa",
    "it": "ita",
    "pt": "por",
    "uk": "ukr",
    "pl": "pol",
    "nl": "nld",
    "cs": "ces",
    "bg": "bul",
    "sr": "srp",
    "tr": "tur",
    "zh": "chi_sim",
    "ja": "jpn",
    "ko": "kor",
}


@functools.lru_cache(maxsize=1)
def _identifier():
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:
        return None
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def by_script(text: str) -> str:
    cyr = len(_CYRILLIC.findall(text))
    lat = len(_LATIN.findall(text))
    return "ru" if cyr > 0 and cyr > 0.3 * (cyr + lat) else "en"


def detect_language(text: str, *, default: str = "") -> str:
    """ISO 639-1 code of the text's language (with too little text to tell: `default`, else the script rule)."""
    if len(_LETTERS.findall(text[:2000])) < 20:
        return default or by_script(text)
    identifier = _identifier()
    if identifier is None:
        return by_script(text)
    samples = _samples(text)
    votes: Counter[str] = Counter()
    for sample in samples:
        code, prob = identifier.classify(_NOISE.sub(" ", sample))
        votes[code] += prob
    code, _ = votes.most_common(1)[0]
    return code


def _samples(text: str) -> list[str]:
    """Samples from the body: the first part of a paper (title page, an abstract in another language) counts for
    one vote at most."""
    if len(text) <= SAMPLE_CHARS * 2:
        return [text]
    starts = [int(len(text) * (i + 1) / (SAMPLES + 1)) for i in range(SAMPLES)]
    return [text[s : s + SAMPLE_CHARS] for s in starts]


def tesseract_languages(language: str, available: set[str]) -> str:
    """Tesseract's language argument for an ISO code: `rus` for ru; English for an unknown or missing one."""
    code = TESSERACT_CODES.get(language, "eng")
    if code not in available:
        code = "eng" if "eng" in available else next(iter(sorted(available)), "eng")
    return code
