import asyncio

import pytest

from processors.errors import SourceError
from processors.settings import Settings
from processors.sources import load_pdf
from schemas import PaperSubmitted


def _load(paper, settings):
    return asyncio.run(load_pdf(paper, settings))


def test_file_inside_roots_is_read(tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7 x")
    settings = Settings(file_roots=[str(tmp_path)])
    assert _load(PaperSubmitted(paper_id="p", pdf_uri=(tmp_path / "a.pdf").as_uri()), settings) == b"%PDF-1.7 x"


@pytest.mark.parametrize(
    "uri, kind",
    [
        ("file:///etc/passwd", "file_outside_roots"),
        ("file://{root}/../escape.pdf", "file_outside_roots"),
        ("file://{root}/missing.pdf", "file_not_found"),
        ("http://127.0.0.1:9/paper.pdf", "host_not_allowed"),
        ("http://169.254.169.254/latest/meta-data", "host_not_allowed"),
        ("ftp://example.org/a.pdf", "unsupported_uri"),
    ],
)
def test_locations_that_are_refused(tmp_path, uri, kind):
    settings = Settings(file_roots=[str(tmp_path)])
    with pytest.raises(SourceError) as info:
        _load(PaperSubmitted(paper_id="p", pdf_uri=uri.format(root=tmp_path)), settings)
    assert info.value.kind == kind


def test_size_limits(tmp_path):
    (tmp_path / "big.pdf").write_bytes(b"%PDF" + b"0" * 2000)
    settings = Settings(file_roots=[str(tmp_path)], max_pdf_bytes=1000, max_inline_bytes=10)
    with pytest.raises(SourceError, match="over the limit"):
        _load(PaperSubmitted(paper_id="p", pdf_uri=(tmp_path / "big.pdf").as_uri()), settings)
    with pytest.raises(SourceError, match="inline PDF"):
        _load(PaperSubmitted(paper_id="p", pdf_bytes=b"%PDF" * 10), settings)
    with pytest.raises(SourceError, match="neither"):
        _load(PaperSubmitted(paper_id="p"), settings)
