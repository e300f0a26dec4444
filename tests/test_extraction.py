import pymupdf
import pytest

from processors.local.samples import write_sample_pdfs
from sciqag.errors import ExtractionError
from sciqag.extraction import extract_pdf

from .conftest import SCAN, shared_pdfs


def _pdf(pages: list[str]) -> bytes:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 40, 550, 800), text, fontsize=9)
    return doc.tobytes()


def test_real_text_pdfs_extract_with_language_and_sections():
    results = {p.name: extract_pdf(p.read_bytes()) for p in shared_pdfs() if p.name != SCAN}
    assert len(results) == 6
    for name, result in results.items():
        assert len(result.text) > 10_000, name
        assert result.pages >= 4
        assert result.language == ("ru" if name == "phd__dissertation.pdf" else "en"), name
        assert len(result.sections) >= 3, name
        assert "ﬁ" not in result.text  # ligatures expanded
        assert result.ocr_pages == [] and result.repaired_pages == {}, name  # clean text layers are taken as they are
    plos = results["sciparse__e4faf2c1d76b9bf8f8b4524dfb8c5c6b93be5f35.pdf"]
    assert plos.removed.get("reference_chars", 0) > 5000  # the reference list is cut
    assert [t for t, _, _ in plos.sections][1:7] == [
        "Abstract",
        "Introduction",
        "Materials and methods",
        "Results",
        "Discussion",
        "Conclusion",
    ]
    assert "PLOS ONE |" not in plos.text  # the running footer is gone


def test_image_only_scan_is_rejected_with_a_reason_when_ocr_is_off():
    scan = next(p for p in shared_pdfs() if p.name == SCAN)
    with pytest.raises(ExtractionError) as info:
        extract_pdf(scan.read_bytes(), ocr="off")  # with OCR (auto) it is read: tests/test_ocr.py
    assert info.value.kind == "image_only_pdf"
    assert "image-only" in str(info.value) and "22 pages" in str(info.value) and "SCIQAG_OCR=off" in str(info.value)


def test_running_headers_and_page_numbers_are_removed():
    def body(page: int) -> str:
        return " ".join(f"Sentence {page}-{n} about perovskite films under humidity." for n in range(30))

    doc = pymupdf.open()
    for i in range(5):  # laid out like a journal page: header, body, folio as separate text blocks
        page = doc.new_page()
        page.insert_text((50, 30), f"Journal of Tests 12 (2024) {100 + i}", fontsize=8)
        page.insert_textbox(pymupdf.Rect(50, 60, 550, 780), body(i), fontsize=9)
        page.insert_text((300, 820), str(i + 1), fontsize=8)
    result = extract_pdf(doc.tobytes())
    assert "Journal of Tests" not in result.text
    assert result.removed["running_header_chars"] > 0
    assert result.text.count("perovskite films") == 150


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda: b"", "empty_file"),
        (lambda: b"PK\x03\x04 a zip, not a pdf", "not_a_pdf"),
        (lambda: b"%PDF-1.7\n" + b"\x00garbage" * 20 + b"\n%%EOF\n", "corrupt_pdf"),
        (lambda: _pdf(["word " * 400])[:300], "truncated_pdf"),
        (lambda: _pdf(["word " * 400] * 3)[:-600], "truncated_pdf"),
    ],
    ids=["empty", "zip", "garbage-after-header", "truncated-early", "truncated-late"],
)
def test_bad_files_raise_extraction_error_with_kind(make, kind):
    with pytest.raises(ExtractionError) as info:
        extract_pdf(make())
    assert info.value.kind in (kind, "no_text")  # PyMuPDF repairs some damage into an empty document
    assert str(info.value)


def test_encrypted_and_oversized_pdfs():
    doc = pymupdf.open(stream=_pdf(["secret " * 400]))
    encrypted = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    with pytest.raises(ExtractionError) as info:
        extract_pdf(encrypted)
    assert info.value.kind == "encrypted_pdf"
    with pytest.raises(ExtractionError) as info:
        extract_pdf(_pdf(["text " * 300] * 4), max_pages=3)
    assert info.value.kind == "too_many_pages"


def test_extraction_error_keeps_its_kind_across_processes():
    import pickle

    err = pickle.loads(pickle.dumps(ExtractionError("x", kind="image_only_pdf")))
    assert err.kind == "image_only_pdf" and str(err) == "x"


def test_bundled_sample_papers_render_and_extract(tmp_path):
    pdfs = write_sample_pdfs(tmp_path)
    assert len(pdfs) >= 3
    languages = set()
    for pdf in pdfs:
        result = extract_pdf(pdf.read_bytes())
        titles = [t for t, _, _ in result.sections]
        assert len(titles) >= 5, (pdf.name, titles)
        languages.add(result.language)
    assert languages == {"en", "ru"}


def test_sample_papers_render_to_the_same_bytes_every_time(tmp_path):
    # same bytes -> same paper_id -> a second `make demo` replaces rows instead of adding papers
    first = [p.read_bytes() for p in write_sample_pdfs(tmp_path / "a")]
    second = [p.read_bytes() for p in write_sample_pdfs(tmp_path / "b")]
    assert first == second
