"""Publisher feed formats -> feed entries. Parsing only; fetching, paging state and publishing live in processors/.

Formats, as their public descriptions define them:
- arXiv API: Atom 1.0 with OpenSearch totals and `arxiv:` extensions (primary_category, doi, journal_ref);
  the PDF is the `<link title="pdf">`.
- Journal tables of contents: RSS 0.9x/1.0 (RDF)/2.0 and Atom 0.3/1.0, read by feedparser (which recovers what it
  can of ill-formed documents, HTML entities and mislabelled encodings), with PRISM (`prism:doi`,
  `prism:publicationName`, in any of its namespaces) and Dublin Core fields.
- OAI-PMH 2.0 `ListRecords` (or `GetRecord`) with `oai_dc` metadata, `resumptionToken` paging and protocol errors.
- Crossref REST API `works` listings (`message.items`, `next-cursor`), or one `work`.

Every XML document is parsed with entity declarations forbidden (defusedxml; feedparser's own expat parser is
swapped for defusedxml's): no entity expansion and no external entity or DTD is ever fetched, whatever the
document's encoding or where its DOCTYPE stands. A DOCTYPE without entity declarations is accepted.
Every problem with a document is a FeedFormatError with a `kind` saying why; what can be read despite a problem is
read and the problem is a warning on the page (`FeedPage.warnings`).
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
import xml.sax
from dataclasses import dataclass, field
from html.parser import HTMLParser

import defusedxml.ElementTree as SafeET
import feedparser
import feedparser.api
from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

from .errors import FeedFormatError
from .ids import normalize_doi

# Entity declarations of every sort (internal, external, unparsed) raise; an external DTD subset (the RSS 0.91
# Netscape DOCTYPE) is let through but never loaded: neither ElementTree nor feedparser's SAX reader (external
# entities and parameter entities off) gives expat a resolver, and expat opens no file or URL by itself
_SAFE = {"forbid_dtd": False, "forbid_entities": True, "forbid_external": False}


def create_parser(*args, **kwargs) -> DefusedExpatParser:
    """The SAX reader feedparser uses (xml.sax.make_parser imports this module for it): defusedxml's, as above."""
    return DefusedExpatParser(**_SAFE)


# feedparser parses well-formed documents with the first SAX reader of this list it can import (then Python's
# own expat reader, which would expand internal entities): this module's, first
feedparser.api.PREFERRED_XML_PARSERS[:] = [__name__]

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
    "dc": "http://purl.org/dc/elements/1.1/",
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
}
PRISM_NAMESPACES = frozenset(
    {
        "http://prismstandard.org/namespaces/1.2/basic/",
        "http://prismstandard.org/namespaces/basic/1.2/",
        "http://prismstandard.org/namespaces/basic/2.0/",
        "http://prismstandard.org/namespaces/basic/2.1/",
        "http://prismstandard.org/namespaces/basic/3.0/",
        "http://purl.org/rss/1.0/modules/prism/",
    }
)
_LANGUAGES = {"en": "en", "eng": "en", "english": "en", "ru": "ru", "rus": "ru", "russian": "ru"}
MAX_FEED_BYTES = 20 * 1024 * 1024

# FeedFormatError kinds (the `kind` label of sciqag_feed_errors_total) and warning kinds
NOT_WELL_FORMED = "malformed_feed"  # bad XML or JSON, or not the document the source kind promises
ENTITIES_REFUSED = "xml_entities_refused"  # an XML document declaring entities
UNREADABLE_ENCODING = "unreadable_encoding"  # bytes that cannot be decoded as the document says (or at all)
API_ERROR = "feed_api_error"  # the API answered an error document (arXiv error entry, Crossref status)
RECOVERED = "recovered_malformed_feed"  # warning: an ill-formed RSS/Atom document read as far as it could be
ENCODING_GUESSED = "encoding_guessed"  # warning: not decodable as declared; read in the encoding feedparser found
UNREADABLE_ENTRIES = "unreadable_entries"  # warning: entries without an id, or of an unexpected shape
UNKNOWN_METADATA = "unknown_metadata_format"  # warning: OAI-PMH records in a format other than oai_dc
NOT_WORKS = "not_a_works_listing"  # warning: a Crossref list of something other than works


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
    warnings: list[str] = field(default_factory=list)  # "kind: message", for what was read despite a problem
    complete: bool = True  # False when some of the document could not be read: do not checkpoint past it


def language_hint(value: str) -> str:
    return _LANGUAGES.get(re.split(r"[-_]", (value or "").strip().lower())[0], "")


class _TextOnly(HTMLParser):
    _BREAKS = {"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "jats:p", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        self.handle_starttag(tag, ())

    def handle_data(self, data):
        self.parts.append(data)


def flatten_html(value: str) -> str:
    """The text of an HTML or JATS fragment (`[Ru(bpy)<sub>3</sub>]<sup>2+</sup>` -> `[Ru(bpy)3]2+`), one line."""
    if "<" not in value and "&" not in value:
        return " ".join(value.split())
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return " ".join("".join(parser.parts).split())


def _text(el: ET.Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _check_size(data: bytes, what: str) -> None:
    if len(data) > MAX_FEED_BYTES:
        raise FeedFormatError(f"{what} document of {len(data)} bytes is over {MAX_FEED_BYTES}")


def _xml(data: bytes, what: str) -> ET.Element:
    _check_size(data, what)
    try:
        return SafeET.fromstring(data, **_SAFE)
    except DefusedXmlException as exc:
        raise FeedFormatError(
            f"{what} document declares entities or external references ({exc!r}); refused: "
            "entity expansion is never done",
            kind=ENTITIES_REFUSED,
        ) from exc
    except ET.ParseError as exc:
        kind = UNREADABLE_ENCODING if "encoding" in str(exc) else NOT_WELL_FORMED
        raise FeedFormatError(f"{what} document is not well-formed XML: {exc}", kind=kind) from exc
    except (ValueError, LookupError) as exc:  # multi-byte or unknown encoding labels, which expat cannot decode
        raise FeedFormatError(f"{what} document's encoding cannot be read: {exc}", kind=UNREADABLE_ENCODING) from exc


def _doi_in(*values: str) -> str:
    for v in values:
        doi = normalize_doi(v or "")
        if doi:
            return doi
    return ""


def _looks_like_pdf(url: str) -> bool:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(".pdf") or "/pdf/" in path


# -- arXiv API (Atom) ----------------------------------------------------------------------------


def parse_arxiv_atom(data: bytes) -> FeedPage:
    root = _xml(data, "Atom")
    if root.tag != f"{{{NS['atom']}}}feed":
        raise FeedFormatError(f"not an Atom feed: root element is {root.tag!r}", kind=NOT_WELL_FORMED)
    total_text = _text(root.find("opensearch:totalResults", NS))
    entries = []
    for e in root.findall("atom:entry", NS):
        entry_id = _text(e.find("atom:id", NS))
        title = _text(e.find("atom:title", NS))
        if entry_id.startswith("http://arxiv.org/api/errors") or title == "Error":
            raise FeedFormatError(f"arXiv API error: {_text(e.find('atom:summary', NS))}", kind=API_ERROR)
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
        entries.append(
            FeedEntry(
                entry_id=entry_id,
                title=title,
                doi=_doi_in(_text(e.find("arxiv:doi", NS))),
                pdf_url=pdf,
                journal=_text(e.find("arxiv:journal_ref", NS)),
                categories=categories,
                authors=[_text(a.find("atom:name", NS)) for a in e.findall("atom:author", NS)],
                published=_text(e.find("atom:published", NS)),
                abstract=_text(e.find("atom:summary", NS)),
                language=language_hint(e.get("{http://www.w3.org/XML/1998/namespace}lang", "")),
            )
        )
    return FeedPage(entries, total=int(total_text) if total_text.isdigit() else None)


# -- RSS 0.9x/1.0/2.0 and Atom (journal tables of contents), through feedparser --------------------------------


def _entities_declared(data: bytes) -> Exception | None:
    """The reason to refuse a document that declares entities or external references (None: it declares none).

    A real XML parser (defusedxml over expat) reads the prolog wherever the DOCTYPE is and in any encoding expat
    decodes; a document it cannot read for another reason is left to feedparser, whose strict parser is the same
    defusedxml reader and whose loose parser processes no DTD."""
    try:
        SafeET.fromstring(data, **_SAFE)
    except DefusedXmlException as exc:
        return exc
    except (ET.ParseError, ValueError, LookupError):
        pass
    return None


def read_feed(data: bytes, *, content_type: str = "", base_url: str = "") -> feedparser.FeedParserDict:
    """feedparser's reading of an RSS or Atom document, refused (FeedFormatError) if it declares entities.

    `content_type` is the HTTP Content-Type (its charset outranks the XML declaration, as RFC 3023 says);
    `base_url` resolves relative links."""
    _check_size(data, "RSS/Atom")
    refused = _entities_declared(data)
    headers = {k: v for k, v in (("content-type", content_type), ("content-location", base_url)) if v}
    if refused is None:
        try:
            # a stream, never a string: feedparser would take a string for a URL or a file name to open
            return feedparser.parse(io.BytesIO(data), response_headers=headers)
        except DefusedXmlException as exc:  # declarations the first parse could not reach (another encoding)
            refused = exc
    raise FeedFormatError(
        f"RSS/Atom document declares entities or external references ({refused!r}); refused: "
        "entity expansion is never done",
        kind=ENTITIES_REFUSED,
    )


def _detail_text(entry, key: str) -> str:
    value = entry.get(key) or ""
    detail = entry.get(f"{key}_detail") or {}
    if detail.get("type", "text/plain") in ("text/html", "application/xhtml+xml"):
        return flatten_html(value)
    return " ".join(value.split())


def _rss_entry(e, channel: dict, prism: tuple[str, ...]) -> FeedEntry | None:
    def pick(*keys: str) -> str:
        for key in keys:
            value = e.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())
        return ""

    def prism_field(name: str) -> str:
        return pick(*(f"{p}_{name}" for p in prism))

    link, guid = pick("link"), pick("id")
    identifiers = [pick("dc_identifier")]
    doi = _doi_in(prism_field("doi"), *identifiers, guid, link)
    links = [x for x in e.get("links") or [] if isinstance(x, dict)]
    pdf = next((x.get("href", "") for x in links if "pdf" in (x.get("type") or "")), "")
    for candidate in (prism_field("url"), link, *identifiers, *(x.get("href", "") for x in links)):
        if not pdf and candidate.startswith("http") and _looks_like_pdf(candidate):
            pdf = candidate
    entry_id = doi or guid or link
    if not entry_id:
        return None
    authors = [" ".join(str(a.get("name") or "").split()) for a in e.get("authors") or [] if isinstance(a, dict)]
    language = pick("language") or (e.get("title_detail") or {}).get("language") or channel["language"]
    return FeedEntry(
        entry_id=entry_id,
        title=_detail_text(e, "title"),
        doi=doi,
        pdf_url=pdf,
        journal=prism_field("publicationname") or pick("dc_source") or channel["journal"],
        categories=[
            " ".join(t["term"].split())
            for t in e.get("tags") or []
            if isinstance(t, dict) and isinstance(t.get("term"), str) and t["term"].strip()
        ],
        authors=[a for a in authors if a],
        published=pick("published", "updated", "created") or prism_field("publicationdate") or prism_field("coverdate"),
        language=language_hint(language or ""),
        abstract=_detail_text(e, "summary"),
    )


def parse_rss(data: bytes, *, content_type: str = "", base_url: str = "") -> FeedPage:
    """RSS 0.9x, 1.0 (RDF) and 2.0, and Atom 0.3/1.0, as feedparser reads them.

    Ill-formed documents (feedparser's `bozo`): what feedparser recovered is read, with a warning, and the page is
    not `complete` (its HTTP validators are not kept, so the next poll reads the document again). An ill-formed
    document that is not recognisably a feed, or whose entries could none of them be read, is refused."""
    result = read_feed(data, content_type=content_type, base_url=base_url)
    flagged = result.get("bozo_exception") if result.get("bozo") else None
    # the strict (XML) parser failed and feedparser's loose parser read the document as far as it could
    problem = flagged if isinstance(flagged, (xml.sax.SAXException, feedparser.UndeclaredNamespace)) else None
    # else: an encoding feedparser had to guess (CharacterEncodingOverride/Unknown) or a Content-Type that is not
    # an XML one (NonXMLContentType): every entry was read, the first is a warning, the second nothing to report
    guessed = (
        flagged
        if isinstance(flagged, (feedparser.CharacterEncodingOverride, feedparser.CharacterEncodingUnknown))
        else None
    )
    if not result.get("version"):  # feedparser found no <rss>, <rdf:RDF> or <feed>: a landing page, an error page
        why = f": {problem}" if problem else ""
        raise FeedFormatError(f"not an RSS or Atom document{why}", kind=NOT_WELL_FORMED)
    feed = result.get("feed") or {}
    prism = tuple(
        dict.fromkeys(
            ["prism"] + [p for p, uri in (result.get("namespaces") or {}).items() if uri in PRISM_NAMESPACES and p]
        )
    )
    channel = {
        "language": feed.get("language") or "",
        "journal": next(
            (
                " ".join(feed[f"{p}_publicationname"].split())
                for p in prism
                if isinstance(feed.get(f"{p}_publicationname"), str)
            ),
            "",
        )
        or _detail_text(feed, "title"),
    }
    entries, unreadable = [], 0
    for e in result.get("entries") or []:
        entry = _rss_entry(e, channel, prism)
        if entry is None:
            unreadable += 1
        else:
            entries.append(entry)
    if problem is not None and unreadable and not entries:
        raise FeedFormatError(
            f"ill-formed RSS/Atom document ({problem}); none of its {unreadable} entries could be read",
            kind=NOT_WELL_FORMED,
        )
    page = FeedPage(entries, complete=problem is None and not unreadable)
    if problem is not None:
        page.warnings.append(
            f"{RECOVERED}: ill-formed document ({type(problem).__name__}: {problem}); "
            f"{len(entries)} entries read as feedparser recovered them"
        )
    if guessed is not None:
        page.warnings.append(f"{ENCODING_GUESSED}: {guessed}")
    if unreadable:
        page.warnings.append(f"{UNREADABLE_ENTRIES}: {unreadable} entries without an id, DOI or link were skipped")
    return page


# -- OAI-PMH ListRecords / GetRecord (oai_dc) ------------------------------------------------------------------


def parse_oai_pmh(data: bytes) -> FeedPage:
    root = _xml(data, "OAI-PMH")
    if root.tag != f"{{{NS['oai']}}}OAI-PMH":
        raise FeedFormatError(f"not an OAI-PMH response: root element is {root.tag!r}")
    response_date = _text(root.find("oai:responseDate", NS))
    error = root.find("oai:error", NS)
    if error is not None:
        return FeedPage(
            [], error_code=error.get("code", "unknown"), error_message=_text(error), response_date=response_date
        )
    listing = root.find("oai:ListRecords", NS)
    if listing is None:
        listing = root.find("oai:GetRecord", NS)
    if listing is None:
        verbs = [
            child.tag.rsplit("}", 1)[-1]
            for child in root
            if child.tag.rsplit("}", 1)[-1] not in ("responseDate", "request")
        ]
        raise FeedFormatError(
            f"OAI-PMH response has neither <ListRecords> nor <error> (it has {verbs}): the source "
            "must answer verb=ListRecords"
        )
    entries, formats = [], {}
    for record in listing.findall("oai:record", NS):
        header = record.find("oai:header", NS)
        if header is None or header.get("status") == "deleted":
            continue
        dc = record.find("oai:metadata/oai_dc:dc", NS)
        if dc is None:
            metadata = record.find("oai:metadata", NS)
            tag = next((child.tag for child in metadata), "(empty)") if metadata is not None else "(none)"
            formats[tag] = formats.get(tag, 0) + 1
            continue
        identifiers = [_text(x) for x in dc.findall("dc:identifier", NS)] + [
            _text(x) for x in dc.findall("dc:relation", NS)
        ]
        pdf = next((i for i in identifiers if i.startswith("http") and _looks_like_pdf(i)), "")
        languages = [language_hint(_text(x)) for x in dc.findall("dc:language", NS)]
        entries.append(
            FeedEntry(
                entry_id=_text(header.find("oai:identifier", NS)),
                title=_text(dc.find("dc:title", NS)),
                doi=_doi_in(*identifiers),
                pdf_url=pdf,
                journal=_text(dc.find("dc:source", NS)),
                categories=[_text(s) for s in dc.findall("dc:subject", NS) if _text(s)]
                + [_text(s) for s in header.findall("oai:setSpec", NS)],
                authors=[_text(c) for c in dc.findall("dc:creator", NS) if _text(c)],
                published=_text(dc.find("dc:date", NS)),
                language=next((x for x in languages if x), ""),
                abstract=_text(dc.find("dc:description", NS)),
            )
        )
    token_el = listing.find("oai:resumptionToken", NS)
    token = _text(token_el)
    size = token_el.get("completeListSize", "") if token_el is not None else ""
    page = FeedPage(entries, next_token=token, total=int(size) if size.isdigit() else None, response_date=response_date)
    if formats:
        page.warnings.append(
            f"{UNKNOWN_METADATA}: {sum(formats.values())} records not in oai_dc "
            f'({", ".join(sorted(formats))}) were not read; set metadata_prefix = "oai_dc"'
        )
    return page


# -- Crossref REST "works" -------------------------------------------------------------------------------------


def _crossref_pdf(links: list) -> str:
    links = [x for x in links if isinstance(x, dict) and isinstance(x.get("URL"), str)]
    typed = next((x["URL"] for x in links if x.get("content-type") == "application/pdf"), "")
    # Springer (/content/pdf/...), IEEE (....pdf) and others type their PDF links "unspecified"
    return typed or next(
        (x["URL"] for x in links if x.get("content-type") in ("unspecified", None, "") and _looks_like_pdf(x["URL"])),
        "",
    )


def _crossref_work(item: dict) -> FeedEntry | None:
    doi = normalize_doi(item["DOI"]) if isinstance(item.get("DOI"), str) else ""
    if not doi:
        return None

    def strings(key: str) -> list[str]:
        value = item.get(key) or []
        return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]

    date = item.get("published") or item.get("issued")
    date_parts = date.get("date-parts") if isinstance(date, dict) else None
    date_parts = (
        date_parts[0] if isinstance(date_parts, list) and date_parts and isinstance(date_parts[0], list) else []
    )
    authors = []
    for a in item.get("author") or []:
        if isinstance(a, dict):
            name = " ".join(str(a[k]) for k in ("given", "family") if a.get(k)) or str(a.get("name") or "")
            if name.strip():
                authors.append(flatten_html(name))
    abstract = item.get("abstract") if isinstance(item.get("abstract"), str) else ""
    return FeedEntry(
        entry_id=doi,
        title=flatten_html(" ".join(strings("title"))),
        doi=doi,
        pdf_url=_crossref_pdf(item.get("link") or []),
        journal=flatten_html(" ".join(strings("container-title")[:1])),
        categories=strings("subject"),
        authors=authors,
        published="-".join(f"{int(p):02d}" for p in date_parts if isinstance(p, int)),
        language=language_hint(item.get("language") if isinstance(item.get("language"), str) else ""),
        abstract=flatten_html(abstract),
    )


def parse_crossref(data: bytes) -> FeedPage:
    _check_size(data, "Crossref")
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise FeedFormatError(f"Crossref body is not UTF-8 JSON: {exc}", kind=UNREADABLE_ENCODING) from exc
    except json.JSONDecodeError as exc:
        raise FeedFormatError(f"Crossref body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), dict):
        raise FeedFormatError(f"not a Crossref API response (no message object): {str(doc)[:200]}")
    if doc.get("status") not in (None, "ok"):
        raise FeedFormatError(
            f"Crossref answered status {doc.get('status')!r}: {str(doc['message'])[:300]}", kind=API_ERROR
        )
    message, message_type = doc["message"], doc.get("message-type")
    if message_type == "work":  # one work (/works/{doi})
        items, message = [message], {}
    elif "items" in message:
        items = message["items"]
        if not isinstance(items, list):
            raise FeedFormatError(f"Crossref message.items is a {type(items).__name__}, not a list")
    else:
        raise FeedFormatError(f"not a Crossref works listing: message-type {message_type!r} has no message.items")
    total = message.get("total-results")
    page = FeedPage(
        [], next_token=str(message.get("next-cursor") or ""), total=total if isinstance(total, int) else None
    )
    if message_type not in (None, "work-list", "work"):
        page.warnings.append(
            f"{NOT_WORKS}: a Crossref {message_type!r} of {len(items)} items, not a work-list; "
            "nothing read (point the url at a /works listing)"
        )
        page.next_token = ""
        return page
    unreadable = 0
    for item in items:
        try:
            entry = _crossref_work(item) if isinstance(item, dict) else None
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):  # a field of an unexpected shape
            entry = None
        if entry is None:
            unreadable += 1
        else:
            page.entries.append(entry)
    if unreadable:
        page.warnings.append(f"{UNREADABLE_ENTRIES}: {unreadable} items without a DOI or of an unexpected shape")
    return page


PARSERS = {
    "arxiv": parse_arxiv_atom,
    "rss": parse_rss,
    "atom": parse_rss,
    "oai-pmh": parse_oai_pmh,
    "crossref": parse_crossref,
}
