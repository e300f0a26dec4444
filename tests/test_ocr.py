"""OCR, the text-layer quality check, mojibake repair, the title rule and the language of the body.

The scans are made here from text PDFs (pages rendered to images, rebuilt as an image-only PDF), so the words
OCR must read back are known. OCR takes ~2 s a page: each test OCRs one or two pages.
"""

import re
from collections import Counter

import pymupdf
import pytest

from sciqag import ocr as ocr_module
from sciqag.errors import ExtractionError
from sciqag.extraction import extract_pdf, looks_like_title
from sciqag.text_quality import assess, repair_mojibake

from .conftest import PDFS, SCAN, shared_pdfs

needs_tesseract = pytest.mark.skipif(
    not ocr_module.find_tessdata() or not {"eng", "rus"} <= ocr_module.available_languages(ocr_module.find_tessdata()),
    reason="Tesseract's eng and rus data are not installed (make tools)",
)

ENGLISH = (
    "Perovskite solar cells degrade quickly when water reaches the absorber layer. In this work we compare three "
    "encapsulation methods under damp heat and report the efficiency that remains after one thousand hours. "
    "Glass lids sealed with a butyl rubber edge kept more than ninety percent of the initial efficiency, while "
    "polymer films alone let moisture through within days. The measurements were repeated on twelve devices "
    "from two batches, and the spread between batches was smaller than the effect of the encapsulation itself. "
)
RUSSIAN = "ЗАКОН КЮРИ. Магнитная восприимчивость парамагнетика обратно пропорциональна абсолютной температуре. "
GERMAN = (
    "Die Messungen wurden bei einer Temperatur von dreihundert Kelvin durchgeführt und mehrfach wiederholt. "
    "Wir zeigen, dass die Leitfähigkeit der Proben mit steigender Feuchtigkeit deutlich abnimmt, während die "
    "Stabilität der Schichten über viele Wochen erhalten bleibt. Diese Ergebnisse stimmen mit früheren Arbeiten "
    "überein und erklären, warum die Versiegelung der Zellen für den Einsatz im Freien entscheidend ist. "
)


def _words(text: str) -> Counter:
    return Counter(w.lower() for w in re.findall(r"[^\W\d_]{3,}", text))


def _recall(original: str, read: str) -> float:
    want = _words(original)
    return sum((want & _words(read)).values()) / sum(want.values())


def _text_pdf(pages: list[str], *, title: str = "", heading: str = "", fontsize: float = 11) -> bytes:
    doc = pymupdf.open()
    for i, text in enumerate(pages):
        page = doc.new_page()
        top = 60
        if heading and i == 0:
            page.insert_textbox(pymupdf.Rect(60, 50, 540, 120), heading, fontsize=20)
            top = 140
        page.insert_textbox(pymupdf.Rect(60, top, 540, 800), text, fontsize=fontsize)
    if title:
        doc.set_metadata({"title": title})
    return doc.tobytes()


def _scan(data: bytes, pages: list[int] | None = None, dpi: int = 200) -> bytes:
    """An image-only PDF of the given pages: each page rendered to a picture, nothing else on it."""
    src = pymupdf.open(stream=data, filetype="pdf")
    out = pymupdf.open()
    for number in pages if pages is not None else range(src.page_count):
        page = src[number]
        pix = page.get_pixmap(dpi=dpi)
        new = out.new_page(width=page.rect.width, height=page.rect.height)
        new.insert_image(new.rect, stream=pix.tobytes("png"))
    return out.tobytes(garbage=3, deflate=True)


def _real(name: str) -> bytes:
    path = next((p for p in shared_pdfs() if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} is not in {PDFS}")
    return path.read_bytes()


@needs_tesseract
def test_english_scan_is_ocrd_and_reads_back_the_words():
    original = _text_pdf([ENGLISH * 3])
    result = extract_pdf(_scan(original))  # no language hint: detected from the first OCR'd page
    assert result.page_methods == ["ocr:no_text"] and result.ocr_pages == [1]
    assert _recall(ENGLISH * 3, result.text) >= 0.9
    assert result.language == "en"


@needs_tesseract
def test_russian_scan_of_a_real_page_reads_back_the_words():
    doc = pymupdf.open(stream=_real("phd__dissertation.pdf"), filetype="pdf")
    doc.select([13])  # a page of running Cyrillic text
    data = doc.tobytes()
    text_layer = extract_pdf(data).text  # the same cleaning (hyphens joined) on both sides
    assert len(text_layer) > 1500
    result = extract_pdf(_scan(data), language_hint="ru")
    assert result.page_methods == ["ocr:no_text"] and result.ocr_language == "rus"
    assert _recall(text_layer, result.text) >= 0.9
    assert result.language == "ru"


@needs_tesseract
def test_the_real_image_only_scan_now_yields_russian_text():
    doc = pymupdf.open(stream=_real(SCAN), filetype="pdf")
    doc.select([1])  # one of its 22 pages: OCR takes 2-5 s a page
    result = extract_pdf(doc.tobytes())  # no hint: read as Russian + English, detected as Russian
    assert result.page_methods == ["ocr:no_text"]
    assert result.language == "ru" and "rus" in result.ocr_language
    assert "Российской Федерации" in result.text and len(result.text) > 1000


@needs_tesseract
def test_hidden_text_layer_with_broken_spacing_under_a_page_image_is_replaced_by_ocr():
    # as old TeX Type3 bitmap fonts come out: "Accelerato r F acilit y"
    broken = " ".join(
        w[0] + " " + w[1:-1] + " " + w[-1]
        if w[:1].isupper() and len(w) > 4
        else w[:-1] + " " + w[-1]
        if len(w) > 4
        else w
        for w in ENGLISH.split()
    )
    image = _scan(_text_pdf([ENGLISH * 2]))
    doc = pymupdf.open(stream=image, filetype="pdf")
    doc[0].insert_textbox(pymupdf.Rect(60, 60, 540, 800), broken * 2, fontsize=11, render_mode=3)  # invisible
    assert assess(doc[0].get_text()).verdict == "broken_spacing"
    result = extract_pdf(doc.tobytes(), language_hint="en")
    assert result.page_methods == ["ocr:broken_spacing"]
    assert _recall(ENGLISH * 2, result.text) >= 0.9


def test_mojibake_pdf_comes_out_as_readable_cyrillic():
    # the text layer of a font whose encoding maps Cyrillic to Latin-1 code points: cp1251 bytes shown as WinAnsi
    mojibake = (RUSSIAN * 8).encode("cp1251").decode("latin-1")
    data = _text_pdf([mojibake])
    assert "ÇÀÊÎÍ ÊÞÐÈ" in pymupdf.open(stream=data, filetype="pdf")[0].get_text()
    result = extract_pdf(data, ocr="off")
    assert result.repaired_pages == {1: "cp1251-as-latin1"} and result.page_methods == ["repaired:cp1251-as-latin1"]
    assert "ЗАКОН КЮРИ" in result.text and "восприимчивость" in result.text
    assert result.language == "ru" and result.ocr_pages == []


def test_mojibake_repair_covers_utf8_read_as_cp1252_and_leaves_good_text_alone():
    import ftfy.bad_codecs  # noqa: F401 - registers sloppy-windows-1252

    garbled = (RUSSIAN * 3).encode("utf-8").decode("sloppy-windows-1252")
    assert assess(garbled).verdict == "mojibake"
    assert repair_mojibake(garbled) == ((RUSSIAN * 3), "ftfy")
    assert repair_mojibake(ENGLISH) is None and repair_mojibake(RUSSIAN * 3) is None
    assert repair_mojibake("Café crème à la française, déjà vu et naïveté près du théâtre. " * 3) is None


def test_clean_text_pdfs_are_never_ocrd(monkeypatch):
    def no_ocr(*args, **kwargs):
        raise AssertionError("a clean text page was OCR'd")

    monkeypatch.setattr(ocr_module, "ocr_page", no_ocr)
    result = extract_pdf(_text_pdf([ENGLISH * 3] * 3))
    assert result.page_methods == ["text"] * 3 and result.ocr_pages == [] and result.ocr_language == ""
    for path in shared_pdfs():
        if path.name != SCAN:
            result = extract_pdf(path.read_bytes())
            assert set(result.page_methods) <= {"text", "empty"}, (path.name, result.page_methods)


def test_scan_without_ocr_is_rejected_with_how_to_enable_it(monkeypatch):
    scan = _scan(_text_pdf([ENGLISH * 3]))
    with pytest.raises(ExtractionError) as info:
        extract_pdf(scan, ocr="off")
    assert info.value.kind == "image_only_pdf" and "SCIQAG_OCR=off" in str(info.value)
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    monkeypatch.setattr(ocr_module, "SYSTEM_TESSDATA", ())
    with pytest.raises(ExtractionError) as info:
        extract_pdf(scan)  # auto without Tesseract: today's behaviour, and the reason says how to enable OCR
    assert info.value.kind == "image_only_pdf" and "tesseract-ocr-rus" in str(info.value)
    with pytest.raises(ExtractionError) as info:
        extract_pdf(scan, ocr="force")
    assert info.value.kind == "ocr_unavailable"
    assert extract_pdf(_text_pdf([ENGLISH * 3])).page_methods == ["text"]  # text PDFs do not need it


@needs_tesseract
def test_a_page_past_the_ocr_time_limit_is_killed_and_recorded():
    with pytest.raises(ExtractionError) as info:
        extract_pdf(_scan(_text_pdf([ENGLISH * 3])), ocr_page_timeout_s=0.05)
    assert info.value.kind == "image_only_pdf" and "ocr_timeout" in str(info.value)


@pytest.mark.parametrize(
    "junk",
    ["paper.dvi", "4.15pp-X-14.dvi", "Microsoft Word - draft_v3.docx", "5", "untitled", "C:\\Users\\me\\paper.pdf", ""],
)
def test_junk_metadata_titles_give_way_to_the_largest_font_line(junk):
    heading = "Moisture ingress in encapsulated perovskite solar cells"
    result = extract_pdf(_text_pdf([ENGLISH * 3], title=junk, heading=heading))
    assert result.title == heading and result.title_source == "largest_font"
    assert not looks_like_title(junk)


def test_a_metadata_title_that_looks_like_a_title_is_kept():
    title = "Damp heat stability of perovskite modules"
    result = extract_pdf(_text_pdf([ENGLISH * 3], title=title, heading="Something else in big letters"))
    assert result.title == title and result.title_source == "metadata"


def test_titles_of_the_real_pdfs():
    expected = {
        "cermine__example3.pdf": "Fragment-based design for the development of N-domain-selective",
        "grobid__1001._0908.0054.pdf": "Ultra light bosonic dark matter and CMB",
        "paperqa__10.1039_D1SC05088E.pdf": "Generation of bright monomeric red fluorescent proteins",
        "phd__dissertation.pdf": "Название диссертационной работы",
        "pymupdf__test_3780.pdf": "Quantum Computation under Micromotion in a Planar Ion Crystal",  # metadata: untitled
        "sciparse__e4faf2c1d76b9bf8f8b4524dfb8c5c6b93be5f35.pdf": "Comparative physiological and metabolomics",
    }
    for path in shared_pdfs():
        if path.name in expected:
            assert extract_pdf(path.read_bytes()).title.startswith(expected[path.name]), path.name


def test_language_is_the_bodys_not_the_abstracts():
    result = extract_pdf(_text_pdf([ENGLISH * 2, GERMAN * 4, GERMAN * 4, GERMAN * 4]))
    assert result.language == "de"
    assert extract_pdf(_text_pdf([ENGLISH * 3] * 2)).language == "en"
    assert extract_pdf(_real("phd__dissertation.pdf")).language == "ru"
    assert extract_pdf(_real("grobid__1001._0908.0054.pdf")).language == "en"  # Spanish affiliations, English body
