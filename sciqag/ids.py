"""Deterministic identifiers: a paper keeps its id across re-submission, a pair across re-delivery."""

from __future__ import annotations

import hashlib
import re

_DOI = re.compile(r"10\.\d{4,9}/\S+", re.IGNORECASE)


def normalize_doi(doi: str) -> str:
    """`https://doi.org/10.1/ABC` and `doi:10.1/abc` both become `10.1/abc`; '' when there is no DOI."""
    match = _DOI.search(doi or "")
    return match.group(0).rstrip(".,;").lower() if match else ""


def paper_id_for(*, doi: str = "", content: bytes | None = None, uri: str = "") -> str:
    """From the DOI when known, else from the PDF's bytes, else from its location."""
    if normalize_doi(doi):
        basis = b"doi:" + normalize_doi(doi).encode()
    elif content:
        basis = b"sha256:" + hashlib.sha256(content).digest()
    elif uri:
        basis = b"uri:" + uri.encode()
    else:
        raise ValueError("a paper id needs a DOI, the PDF bytes or a location")
    return "p" + hashlib.sha256(basis).hexdigest()[:20]


def qa_id_for(paper_id: str, index: int, prompt_version: str, kind: str = "open") -> str:
    return "q" + hashlib.sha256(f"{paper_id}|{kind}|{index}|{prompt_version}".encode()).hexdigest()[:20]
