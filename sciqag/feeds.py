"""Publisher feed formats -> feed entries. Parsing only; fetching, paging state and publishing live in processors/.

Formats, as their public descriptions define them:
- arXiv API: Atom 1.0 with OpenSearch totals and `arxiv:` extensions (primary_category, doi, journal_ref);
  the PDF is the `<link title="pdf">`.
- RSS 2.0 and RSS 1.0 (RDF) table-of-contents feeds, with PRISM (`prism:doi`, `prism:publicationName`)
  and Dublin Core (`dc:identifier`, `dc:language`, `dc:subject`) fields.
- OAI-PMH 2.0 `ListRecords` with `oai_dc` metadata, `resumptionToken` paging and protocol errors.
- Crossref REST API `works` listings (`message.items`, `next-cursor`).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .errors import SciqagError
from .ids import normalize_doi

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rss1": "http://purl.org/rss/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "prism": "http://prismstandard.org/namespaces/basic/2.0/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
}
_LANGUAGES = {"en": "en", "eng": "en", "english": "en", "ru": "ru", "rus": "ru", "russian": "ru"}
MAX_FEED_BYTES = 20 * 1024 * 1024


class FeedFormatError(SciqagError):
    kind = "malformed_feed"


@dataclass
class FeedEntry:
    entry_id: str  # the entry's id in its feed: arXiv id URL, guid, OAI identifier, DOI
    title: str = ""
    doi: str = ""
    pdf_url: str = ""
    journal: str = ""
    categories: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    published: str = ""  # ISO 8601 as the feed gives it
    language: str = ""  # "en" / "ru" when the feed says so
    abstract: str = ""


@dataclass
class FeedPage:
    entries: list[FeedEntry]
    next_token: str = ""  # OAI-PMH resumptionToken, Crossref next-cursor
    total: int | None = None  # arXiv totalResults, Crossref total-results, OAI completeListSize
    error_code: str = ""  # OAI-PMH protocol error (noRecordsMatch, badResumptionToken...)
    error_message: str = ""
    response_date: str = ""  # OAI-PMH responseDate: the next incremental harvest's `from`


def language_hint(value: str) -> str:
    return _LANGUAGES.get((value or "").strip().lower().split("-")[0], "")


def _text(el: ET.Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _xml(data: bytes, what: str) -> ET.Element:
    if len(data) > MAX_FEED_BYTES:
        raise FeedFormatError(f"{what} document of {len(data)} bytes is over {MAX_FEED_BYTES}")
    if b"<!ENTITY" in data[:4096].upper() or b"<!DOCTYPE" in data[:4096].upper():
        # no feed format here needs a DTD; refusing it rules out entity-expansion tricks
        raise FeedFormatError(f"{what} document declares a DTD or entities; refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise FeedFormatError(f"{what} document is not well-formed XML: {exc}") from exc


def _doi_in(*values: str) -> str:
    for v in values:
        doi = normalize_doi(v or "")
        if doi:
            return doi
    return ""


def _looks_like_pdf(url: str) -> bool:
    path = url.split("?", 1)[0].lower()
    return path.endswith(".pdf") or "/pdf/" in path


# -- arXiv API (Atom) ----------------------------------------------------------------------------

def parse_arxiv_atom(data: bytes) -> FeedPage:
    root = _xml(data, "Atom")
    if root.tag != f"{{{NS['atom']}}}feed":
        raise FeedFormatError(f"not an Atom feed: root element is {root.tag!r}")
    total_text = _text(root.find("opensearch:totalResults", NS))
    entries = []
    for e in root.findall("atom:entry", NS):
        entry_id = _text(e.find("atom:id", NS))
        title = _text(e.find("atom:title", NS))
        if entry_id.startswith("http://arxiv.org/api/errors") or title == "Error":
            raise FeedFormatError(f"arXiv API error: {_text(e.find('atom:summary', NS))}")
        if not entry_id:
            continue
        pdf = ""
        for link in e.findall("atom:link", NS):
            if link.get("title") == "pdf" or link.get("type") == "application/pdf":
                pdf = link.get("href", "")
                break
        categories = [c.get("term", "") for c in e.findall("atom:category", NS) if c.get("term")]
        primary = e.find("arxiv:primary_category", NS)
        if primary is not None and primary.get("term") in categories:
            categories.remove(primary.get("term"))
            categories.insert(0, primary.get("term"))
        entries.append(FeedEntry(
            entry_id=entry_id, title=title, doi=_doi_in(_text(e.find("arxiv:doi", NS))), pdf_url=pdf,
            journal=_text(e.find("arxiv:journal_ref", NS)), categories=categories,
            authors=[_text(a.find("atom:name", NS)) for a in e.findall("atom:author", NS)],
            published=_text(e.find("atom:published", NS)), abstract=_text(e.find("atom:summary", NS)),
            language=language_hint(e.get("{http://www.w3.org/XML/1998/namespace}lang", "")),
        ))
    return FeedPage(entries, total=int(total_text) if total_text.isdigit() else None)


# -- RSS 2.0 and RSS 1.0 (RDF) -------------------------------------------------------------------

def _rss_item(item: ET.Element, channel_language: str, channel_title: str, ns_item: str) -> FeedEntry | None:
    def first(*paths: str) -> str:
        for p in paths:
            value = _text(item.find(p, NS))
            if value:
                return value
        return ""

    link = first(f"{ns_item}link")
    guid = first("guid") if not ns_item else item.get(f"{{{NS['rdf']}}}about", "")
    identifiers = [_text(x) for x in item.findall("dc:identifier", NS)]
    doi = _doi_in(first("prism:doi"), *identifiers, guid, link)
    pdf = ""
    enclosure = item.find("enclosure")
    if enclosure is not None and "pdf" in (enclosure.get("type") or ""):
        pdf = enclosure.get("url", "")
    for candidate in (first("prism:url"), link, *identifiers):
        if not pdf and candidate.startswith("http") and _looks_like_pdf(candidate):
            pdf = candidate
    entry_id = doi or guid or link
    if not entry_id:
        return None
    return FeedEntry(
        entry_id=entry_id, title=first(f"{ns_item}title", "dc:title"), doi=doi, pdf_url=pdf,
        journal=first("prism:publicationName", "dc:source") or channel_title,
        categories=[_text(s) for s in item.findall("dc:subject", NS) if _text(s)]
        + [_text(c) for c in item.findall("category") if _text(c)],
        authors=[_text(a) for a in item.findall("dc:creator", NS) if _text(a)],
        published=first("pubDate", "dc:date", "prism:publicationDate"),
        language=language_hint(first("dc:language") or channel_language),
        abstract=first(f"{ns_item}description", "content:encoded"),
    )


def parse_rss(data: bytes) -> FeedPage:
    """RSS 2.0 (`<rss><channel><item>`) or RSS 1.0 (`<rdf:RDF><item>` beside `<channel>`)."""
    root = _xml(data, "RSS")
    entries = []
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise FeedFormatError("RSS 2.0 document without a <channel>")
        language = _text(channel.find("language")) or _text(channel.find("dc:language", NS))
        title = _text(channel.find("prism:publicationName", NS)) or _text(channel.find("title"))
        items, ns_item = channel.findall("item"), ""
    elif root.tag == f"{{{NS['rdf']}}}RDF":
        channel = root.find("rss1:channel", NS)
        language = _text(channel.find("dc:language", NS)) if channel is not None else ""
        title = ""
        if channel is not None:
            title = _text(channel.find("prism:publicationName", NS)) or _text(channel.find("rss1:title", NS))
        items, ns_item = root.findall("rss1:item", NS), "rss1:"
    else:
        raise FeedFormatError(f"not an RSS 2.0 or RSS 1.0 document: root element is {root.tag!r}")
    for item in items:
        entry = _rss_item(item, language, title, ns_item)
        if entry is not None:
            entries.append(entry)
    return FeedPage(entries)


# -- OAI-PMH ListRecords (oai_dc) ----------------------------------------------------------------

def parse_oai_pmh(data: bytes) -> FeedPage:
    root = _xml(data, "OAI-PMH")
    if root.tag != f"{{{NS['oai']}}}OAI-PMH":
        raise FeedFormatError(f"not an OAI-PMH response: root element is {root.tag!r}")
    response_date = _text(root.find("oai:responseDate", NS))
    error = root.find("oai:error", NS)
    if error is not None:
        return FeedPage([], error_code=error.get("code", "unknown"), error_message=_text(error),
                        response_date=response_date)
    listing = root.find("oai:ListRecords", NS)
    if listing is None:
        raise FeedFormatError("OAI-PMH response has neither <ListRecords> nor <error>")
    entries = []
    for record in listing.findall("oai:record", NS):
        header = record.find("oai:header", NS)
        if header is None or header.get("status") == "deleted":
            continue
        dc = record.find("oai:metadata/oai_dc:dc", NS)
        if dc is None:
            continue
        identifiers = [_text(x) for x in dc.findall("dc:identifier", NS)] + \
                      [_text(x) for x in dc.findall("dc:relation", NS)]
        pdf = next((i for i in identifiers if i.startswith("http") and _looks_like_pdf(i)), "")
        entries.append(FeedEntry(
            entry_id=_text(header.find("oai:identifier", NS)), title=_text(dc.find("dc:title", NS)),
            doi=_doi_in(*identifiers), pdf_url=pdf, journal=_text(dc.find("dc:source", NS)),
            categories=[_text(s) for s in dc.findall("dc:subject", NS) if _text(s)]
            + [_text(s) for s in header.findall("oai:setSpec", NS)],
            authors=[_text(c) for c in dc.findall("dc:creator", NS)], published=_text(dc.find("dc:date", NS)),
            language=language_hint(_text(dc.find("dc:language", NS))), abstract=_text(dc.find("dc:description", NS)),
        ))
    token_el = listing.find("oai:resumptionToken", NS)
    token = _text(token_el)
    size = token_el.get("completeListSize", "") if token_el is not None else ""
    return FeedPage(entries, next_token=token, total=int(size) if size.isdigit() else None,
                    response_date=response_date)


# -- Crossref REST "works" --------------------------------------------------------------------------

def parse_crossref(data: bytes) -> FeedPage:
    try:
        doc = json.loads(data)
        message = doc["message"]
        items = message["items"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise FeedFormatError(f"not a Crossref works listing (message.items): {exc}") from exc
    if doc.get("status") not in (None, "ok"):
        raise FeedFormatError(f"Crossref answered status {doc.get('status')!r}")
    entries = []
    for item in items:
        if not isinstance(item, dict) or not item.get("DOI"):
            continue
        links = [link for link in item.get("link") or [] if isinstance(link, dict)]
        pdf = next((link.get("URL", "") for link in links if link.get("content-type") == "application/pdf"), "")
        date_parts = ((item.get("published") or item.get("issued") or {}).get("date-parts") or [[]])[0]
        entries.append(FeedEntry(
            entry_id=normalize_doi(item["DOI"]), title=" ".join(item.get("title") or []),
            doi=normalize_doi(item["DOI"]), pdf_url=pdf, journal=" ".join((item.get("container-title") or [])[:1]),
            categories=[s for s in item.get("subject") or [] if isinstance(s, str)],
            authors=[" ".join(filter(None, (a.get("given"), a.get("family")))) for a in item.get("author") or []
                     if isinstance(a, dict)],
            published="-".join(f"{int(p):02d}" for p in date_parts if isinstance(p, int)),
            language=language_hint(item.get("language", "")), abstract=re.sub(r"<[^>]+>", " ", item.get("abstract", "")),
        ))
    total = message.get("total-results")
    return FeedPage(entries, next_token=message.get("next-cursor") or "", total=total if isinstance(total, int) else None)


PARSERS = {"arxiv": parse_arxiv_atom, "rss": parse_rss, "oai-pmh": parse_oai_pmh, "crossref": parse_crossref}
