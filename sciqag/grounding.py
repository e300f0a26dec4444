"""Evidence quotes located in the paper text, and how much of an answer they ground (issue 18).

The generator gives 1-3 short verbatim quotes per answer. `Locator(text)` normalises the paper text once (case,
whitespace, ligatures, hyphenation at line ends and inside words, quote characters, dashes, accents, degree and
superscript forms) and keeps a map from normalised to original positions, so every quote is found with one
`str.find` on the normalised text; a quote that is not there verbatim gets the best fuzzy alignment (rapidfuzz
`partial_ratio_alignment`) inside a few candidate windows picked cheaply by voting of the quote's rarer words,
and is located when its ratio reaches the threshold.

    locator = Locator(paper.text)                       # once per paper
    spans = locator.locate_all(quotes)                  # EvidenceSpan per quote, offsets into paper.text
    grounding = grounding_score(answer, paper.text, spans)   # None when there was no quote

Offsets are `[start, end)` into the ORIGINAL text; for a located quote `normalise(text[start:end]) ==
normalise(quote)` when it matched exactly (ratio 1.0).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz

from .quality import numbers_in

# Calibrated on the real texts (`python -m benchmarks --only grounding`): quotes cut from a paper with one short word
# left out (a model's slip) have a 5th-percentile ratio of 0.91 and 99.8% reach 0.88; quotes and answers cut from the
# other papers reach at most 0.67 there, 0.72 in a wider trial. Quotes under 40 characters reached 0.86 in that trial
# (short common phrases align well by chance): they must match exactly (MIN_FUZZY_CHARS). The SciQAG authors'
# answers, paraphrases of the paper, have a median best ratio of 0.69: they are not quotes; 10.5% of them reach 0.88.
DEFAULT_THRESHOLD = 0.88
MIN_FUZZY_CHARS = 40  # a shorter quote must match exactly: short phrases align well by chance anywhere
MAX_QUOTE_CHARS = 2000  # longer "quotes" are cut (an answer used as a quote is a few hundred characters)
CANDIDATE_WINDOWS = 5

__all__ = [
    "DEFAULT_THRESHOLD",
    "EvidenceSpan",
    "Locator",
    "content_terms",
    "grounding_score",
    "locate_quotes",
    "normalise",
]


@dataclass(frozen=True)
class EvidenceSpan:
    """One quote and where it is in the paper text: `[start, end)` into the original text, -1 when not located."""

    quote: str
    start: int
    end: int
    ratio: float  # 1.0 for an exact (normalised) match, else the best fuzzy ratio found, 0..1
    located: bool

    @property
    def exact(self) -> bool:
        return self.located and self.ratio >= 1.0


# -- normalisation -----------------------------------------------------------------------------------------------

_EXPLICIT = {
    # quote characters -> ' and "
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035`\u02bc\u02b9\u2039\u203a", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u02ba\u301d\u301e\uff02", '"'),
    # dashes and minus signs -> -
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d", "-"),
    # degree written as a ring or a white bullet in PDFs (37 ◦C, 25 ˚C); Å often comes out as "˚A"
    **dict.fromkeys("\u25e6\u02da\u00ba\u2218", "\u00b0"),
    "\u00c5": "\u00b0a",
    "\u00e5": "\u00b0a",
    "\u212b": "\u00b0a",
    "\u223c": "~",
    "\u02dc": "~",
    "\u2248": "~",
    "\u0131": "i",  # dotless i ("Cosmolog´ıa")
    "\u00d7": "x",
    "\u2044": "/",
    "\u2215": "/",
    # invisible: soft hyphen, zero-width characters, BOM
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
}
_RANGES = (
    (0x00A0, 0x0250),
    (0x0370, 0x0400),
    (0x0400, 0x0500),
    (0x1E00, 0x1F00),
    (0x2000, 0x2200),
    (0x2460, 0x2500),
    (0xFB00, 0xFB50),
    (0xFF00, 0xFFF0),
)


def _char_form(c: str) -> str:
    if c in _EXPLICIT:
        return _EXPLICIT[c]
    if c.isspace():
        return " "
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", c))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    if not folded.strip():  # a spacing accent (´ ¨ ˘): PDFs draw it over the next letter, it is no character
        return ""
    return "".join(_EXPLICIT.get(ch, ch) for ch in folded).lower()


def _tables() -> tuple[dict[int, str], dict[str, str]]:
    one, other = {}, {}
    for lo, hi in _RANGES:
        for code in range(lo, hi):
            c = chr(code)
            form = _char_form(c)
            if form != c:
                (one.__setitem__(code, form) if len(form) == 1 else other.__setitem__(c, form))
    for c in _EXPLICIT:
        form = _char_form(c)
        (one.__setitem__(ord(c), form) if len(form) == 1 else other.__setitem__(c, form))
    for c in "\t\n\r\f\v\u0085\u1680\u2028\u2029\u3000":
        one[ord(c)] = " " if c != "\n" else "\n"  # newlines stay until hyphenation is read
    return one, other


_ONE_TO_ONE, _RESIZED = _tables()
_LETTER = r"[^\W\d_]"
_PASS = re.compile(
    "|".join(
        [
            "(?P<resized>[" + "".join(re.escape(c) for c in _RESIZED) + "])",
            # a hyphen between letters, also one at a line end or before a space (where a PDF line ended):
            # "hyphen-\nated", "ком- муникации", "state-of-the-art", "stateof-the-art" (the extractor's own joining)
            rf"(?P<hyphen>(?<={_LETTER})-\s*(?={_LETTER}))",
            r"(?P<linehyphen>-\s+)",  # whitespace after any other hyphen: "7-\n9" -> "7-9", whatever the wrapping
            r"(?P<gap>(?<=[(\[])\s+|\s+(?=[,.;:!?)\]%\u00b0\u00e5]))",  # "( 2 )", "37 °C", "25 %", "word ,"
            r"(?P<space>\s{2,}|[^\S ])",  # any other whitespace run that is not one plain space
        ]
    )
)


def _normalise_mapped(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the index of the original character it comes from."""
    t = text.replace("\u0130", "I").lower()
    if len(t) != len(text):  # a character whose lower case is longer (outside the BMP cases above): go char by char
        t = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    t = t.translate(_ONE_TO_ONE)
    parts: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _PASS.finditer(t):
        a, b = m.span()
        if a > pos:
            parts.append(t[pos:a])
            offsets.extend(range(pos, a))
        kind = m.lastgroup
        if kind == "resized":
            rep = _RESIZED[m.group()]
        elif kind == "hyphen" or kind == "gap":
            rep = ""
        elif kind == "linehyphen":
            rep = "-"
        else:
            rep = " "
        if rep:
            parts.append(rep)
            offsets.extend([a] * len(rep))
        pos = b
    if pos < len(t):
        parts.append(t[pos:])
        offsets.extend(range(pos, len(t)))
    return "".join(parts), offsets


_EDGE = " \"'.,;:…"


def normalise(s: str) -> str:
    """The form quotes are compared in: lower case, one space per whitespace run, no line-end or in-word hyphens,
    ligatures spelt out, one kind of quote character and dash, accents folded. Surrounding quotes and dots are cut."""
    return _normalise_mapped(s)[0].strip(_EDGE)


# -- the locator --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")


@dataclass
class _Index:
    starts: list[int]  # char position (normalised) of each token
    ends: list[int]
    postings: dict[str, list[int]]  # token -> token numbers


class Locator:
    """Finds quotes in one paper text. Build it once per paper: the text is normalised here, once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.norm, self._offsets = _normalise_mapped(text)
        self._index: _Index | None = None  # the word index is built on the first quote that needs the fuzzy path

    def _orig(self, a: int, b: int) -> tuple[int, int]:
        """Normalised [a, b) -> original [start, end)."""
        return self._offsets[a], self._offsets[b - 1] + 1

    def _word_index(self) -> _Index:
        if self._index is None:
            starts, ends, postings = [], [], defaultdict(list)
            for i, m in enumerate(_TOKEN.finditer(self.norm)):
                starts.append(m.start())
                ends.append(m.end())
                postings[m.group()].append(i)
            self._index = _Index(starts, ends, dict(postings))
        return self._index

    def locate(self, quote: str, *, threshold: float = DEFAULT_THRESHOLD) -> EvidenceSpan:
        q = normalise(quote[:MAX_QUOTE_CHARS])
        if not q:
            return EvidenceSpan(quote, -1, -1, 0.0, False)
        hit = self._exact(q)
        if hit is not None:
            return EvidenceSpan(quote, *self._orig(hit, hit + len(q)), 1.0, True)
        if len(q) < MIN_FUZZY_CHARS:
            return EvidenceSpan(quote, -1, -1, 0.0, False)
        aligned, a, b = self._fuzzy(q)
        if b <= a:
            return EvidenceSpan(quote, -1, -1, aligned, False)
        start, end = self._orig(a, b)
        # the lower of the alignment's ratio (what the threshold was calibrated on) and the passage's own, so a stored
        # span can be checked: fuzz.ratio(normalise(quote), normalise(text[start:end])) / 100 >= ratio
        ratio = min(aligned, fuzz.ratio(q, normalise(self.text[start:end])) / 100)
        # a near-verbatim quote with other numbers than the passage is not that passage ("43 pages" quoted as "120")
        if ratio >= threshold and _numbers_within(q, self.norm[a:b]):
            return EvidenceSpan(quote, start, end, ratio, True)
        return EvidenceSpan(quote, -1, -1, ratio, False)

    def locate_all(self, quotes: list[str], *, threshold: float = DEFAULT_THRESHOLD) -> list[EvidenceSpan]:
        return [self.locate(q, threshold=threshold) for q in quotes]

    def _exact(self, q: str) -> int | None:
        """The first occurrence on word boundaries, else the first occurrence."""
        norm, first = self.norm, self.norm.find(q)
        at, tries = first, 0
        while at >= 0 and tries < 20:
            before = norm[at - 1] if at else " "
            after = norm[at + len(q)] if at + len(q) < len(norm) else " "
            if not (before.isalnum() and q[0].isalnum()) and not (after.isalnum() and q[-1].isalnum()):
                return at
            at, tries = norm.find(q, at + 1), tries + 1
        return first if first >= 0 else None

    def _candidates(self, q: str) -> list[tuple[int, int]]:
        """Normalised char windows where the quote's rarer words line up (votes on the quote-to-text diagonal)."""
        index = self._word_index()
        words = _TOKEN.findall(q)
        if not words:
            return []
        n_tokens = len(index.starts)
        common = max(30, n_tokens // 100)  # words this frequent say nothing about where the quote is
        votes: list[tuple[int, float]] = []
        for j, w in enumerate(words):
            posting = index.postings.get(w)
            if not posting or len(posting) > common:
                continue
            weight = 1.0 / len(posting)
            votes.extend((p - j, weight) for p in posting)
        if not votes:
            return []
        votes.sort()
        diags = [d for d, _ in votes]
        span = len(words)
        scored = []
        lo, total = 0, 0.0
        for d, w in votes:  # best sum of votes with diagonals in [d - span, d]
            total += w
            while diags[lo] < d - span:
                total -= votes[lo][1]
                lo += 1
            scored.append((total, diags[lo], d))
        scored.sort(reverse=True)
        windows: list[tuple[int, int]] = []
        slack = max(8, span // 2)
        for _, d_lo, d_hi in scored:
            first = max(0, d_lo - slack)
            last = min(n_tokens - 1, d_hi + span + slack)
            a, b = index.starts[first], index.ends[last]
            if any(a < wb and wa < b for wa, wb in windows):
                continue
            windows.append((a, b))
            if len(windows) == CANDIDATE_WINDOWS:
                break
        return windows

    def _fuzzy(self, q: str) -> tuple[float, int, int]:
        windows = self._candidates(q)
        if not windows and len(self.norm) <= 200_000:
            windows = [(0, len(self.norm))]
        best = (0.0, -1, -1)
        for a, b in windows:
            if b - a < len(q):  # the window must be the longer side of the alignment
                a, b = max(0, a - (len(q) - (b - a))), min(len(self.norm), b + len(q))
            found = fuzz.partial_ratio_alignment(q, self.norm[a:b], score_cutoff=best[0] * 100)
            if found is not None and found.score / 100 > best[0]:
                best = (found.score / 100, a + found.dest_start, a + found.dest_end)
        ratio, a, b = best
        if a < 0:
            return best
        return ratio, *self._refine(q, a, b)

    def _refine(self, q: str, a: int, b: int) -> tuple[int, int]:
        """The alignment's window has the quote's length; the passage may be longer or shorter (a word dropped or
        added). Move its end, then its start, to the word boundary nearby that makes the passage most like the quote."""
        index, norm = self._word_index(), self.norm
        reach = max(12, len(q) // 4)

        def near(bounds: list[int], at: int) -> list[int]:
            lo, hi = bisect.bisect_left(bounds, at - reach), bisect.bisect_right(bounds, at + reach)
            return bounds[lo:hi]

        starts = near(index.starts, a) or [a]
        start = min(starts, key=lambda s: abs(s - a))
        ends = [e + k for e in near(index.ends, b) for k in (0, 1) if e + k > start and e + k <= len(norm)] or [b]
        end = max(ends, key=lambda e: (fuzz.ratio(q, norm[start:e]), -abs(e - b)))
        starts = [s for s in starts if s < end] or [start]
        start = max(starts, key=lambda s: (fuzz.ratio(q, norm[s:end]), -abs(s - a)))
        while start < end and norm[start].isspace():
            start += 1
        while end > start and norm[end - 1].isspace():
            end -= 1
        return start, end


def _numbers_within(quote: str, passage: str) -> bool:
    found = set(numbers_in(passage))
    return all(n in found or n.lstrip("-") in found for n in numbers_in(quote))


def locate_quotes(text: str, quotes: list[str], *, threshold: float = DEFAULT_THRESHOLD) -> list[EvidenceSpan]:
    """One-off form of `Locator(text).locate_all(quotes)`; build a Locator per paper for more than one pair."""
    return Locator(text).locate_all(quotes, threshold=threshold)


# -- grounding ----------------------------------------------------------------------------------------------------

STOP_WORDS = frozenset(
    """
a an the and or but nor not no yes so as at by for from in into of off on onto out over to up with within without
via per than then that this these those there here it its it's they them their theirs we our us you your he she his
her him i me my is are was were be been being am do does did done doing have has had having can could may might must
shall should will would which who whom whose what when where why how whether while if also too very more most less
least much many such only own same other others another each every any all both few some several between among about
above below under after before during through against along across around because since until upon however thus
therefore hence although though whereas e.g i.e etc et al one two three first second new used use using based show
shows shown showed found find result results study studies paper work works author authors
и в во не на с со что как а но или же ли бы то это этот эта эти тот та те той тем том так также таким такой для по к
ко у о об от до из при за над под без через между про после перед около чем чтобы если когда где который которая
которое которые которых которым которой которого его ее её их им ими он она оно они мы вы я был была было были быть
является являются есть нет да все всех всё весь вся более менее очень уже еще ещё лишь только даже может могут можно
нужно был данный данная данные данной работе работа работы статье
""".split()
)

# light suffix stripping, so "temperatures"/"temperature" and "температуры"/"температура" are one term
_SUFFIXES = sorted(
    set(
        """
ations ation ings ing ies ied edly ed es s ly ity ities ment ments ness al ally ive ives ous
ами ями ого его ому ему ыми ими ая яя ое ее ые ие ый ий ой ей ую юю ам ям ах ях ов ев ом ем ия ие ии ию ья ье ьи ой
а я ы и у ю е о ь й
""".split()
    ),
    key=len,
    reverse=True,
)
_WORD = re.compile(r"[^\W_]+")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_terms(text: str) -> tuple[set[str], list[str], list[str]]:
    """(stems of the content words as a set, the content words in order, the numbers in order) of a text."""
    norm = _normalise_mapped(text)[0]
    words = [
        w
        for w in _WORD.findall(norm)
        if not w.isdigit() and len(w) >= 2 and w not in STOP_WORDS and not w.replace(".", "").isdigit()
    ]
    return {_stem(w) for w in words}, words, numbers_in(text)


def grounding_score(answer: str, text: str, spans: list[EvidenceSpan]) -> float | None:
    """Share of the answer's content words and numbers that occur in the located evidence, 0..1.

    None when the model gave no quote (`spans` empty); 0.0 when it gave quotes and none was located. An answer
    without content words or numbers counts as grounded (1.0) as soon as one quote is located.
    """
    if not spans:
        return None
    located = [s for s in spans if s.located]
    if not located:
        return 0.0
    evidence = " \n ".join(text[s.start : s.end] for s in located)
    stems, _, numbers = content_terms(evidence)
    number_set = set(numbers)
    _, words, answer_numbers = content_terms(answer)
    total = len(words) + len(answer_numbers)
    if not total:
        return 1.0
    covered = sum(1 for w in words if _stem(w) in stems)
    covered += sum(1 for n in answer_numbers if n in number_set or n.lstrip("-") in number_set)
    return covered / total


def merge_spans(spans: list[EvidenceSpan]) -> list[tuple[int, int]]:
    """The located spans as sorted, non-overlapping [start, end) ranges (for highlighting)."""
    ranges = sorted((s.start, s.end) for s in spans if s.located)
    merged: list[tuple[int, int]] = []
    for a, b in ranges:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged
