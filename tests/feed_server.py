"""A loopback HTTP server that speaks the public feed formats (written here from their specifications),
pages them, fails on purpose, and serves the real PDFs the entries link to."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .conftest import PDFS, SCAN, SHARED

REAL_FEEDS = SHARED / "feeds"  # real documents (see its README); served under /real/<folder>/<file>

SMALL_A = "grobid__1001._0908.0054.pdf"  # 4 pages
SMALL_B = "pymupdf__test_3780.pdf"  # 5 pages


def atom_page(entries: list[dict], total: int, start: int) -> bytes:
    items = "".join(
        f"""
  <entry>
    <id>http://arxiv.org/abs/{e["id"]}</id>
    <updated>{e["date"]}</updated><published>{e["date"]}</published>
    <title>{e["title"]}</title>
    <summary>An abstract.</summary>
    <author><name>A. Author</name></author><author><name>B. Author</name></author>
    {f"<arxiv:doi>{e['doi']}</arxiv:doi>" if e.get("doi") else ""}
    <link href="http://arxiv.org/abs/{e["id"]}" rel="alternate" type="text/html"/>
    <link title="pdf" href="{e["pdf"]}" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cond-mat.mtrl-sci" scheme="http://arxiv.org/schemas/atom"/>
    <category term="physics.chem-ph" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cond-mat.mtrl-sci" scheme="http://arxiv.org/schemas/atom"/>
  </entry>"""
        for e in entries
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom">
  <link href="http://arxiv.org/api/query" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query</title>
  <id>http://arxiv.org/api/x</id>
  <updated>2026-11-20T00:00:00-05:00</updated>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
  <opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>{items}
</feed>""".encode()


def rss2(items: list[dict]) -> bytes:
    body = "".join(
        f"""
    <item>
      <title>{i["title"]}</title>
      <link>https://doi.org/{i["doi"]}</link>
      <guid isPermaLink="false">{i["doi"]}</guid>
      <description>Graphical abstract.</description>
      <pubDate>Thu, 19 Nov 2026 00:00:00 GMT</pubDate>
      <dc:creator>C. Author</dc:creator>
      <prism:doi>{i["doi"]}</prism:doi>
      <category>Analytical chemistry</category>
      {f'<enclosure url="{i["pdf"]}" length="1000" type="application/pdf"/>' if i.get("pdf") else ""}
    </item>"""
        for i in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">
  <channel>
    <title>Journal of Tests: latest articles</title>
    <link>http://journal.example/</link>
    <description>Table of contents</description>
    <language>en</language>
    <prism:publicationName>Journal of Tests</prism:publicationName>{body}
  </channel>
</rss>""".encode()


def rss1(items: list[dict]) -> bytes:
    seq = "".join(f'<rdf:li rdf:resource="https://doi.org/{i["doi"]}"/>' for i in items)
    body = "".join(
        f"""
  <item rdf:about="https://doi.org/{i["doi"]}">
    <title>{i["title"]}</title>
    <link>{i["pdf"]}</link>
    <dc:identifier>doi:{i["doi"]}</dc:identifier>
    <dc:language>{i.get("lang", "en")}</dc:language>
    <dc:subject>Materials science</dc:subject>
    <prism:doi>{i["doi"]}</prism:doi>
    <prism:publicationName>Вестник испытаний</prism:publicationName>
  </item>"""
        for i in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">
  <channel rdf:about="http://journal-ru.example/rss">
    <title>Вестник испытаний</title><link>http://journal-ru.example/</link><description>Новые статьи</description>
    <dc:language>ru</dc:language>
    <items><rdf:Seq>{seq}</rdf:Seq></items>
  </channel>{body}
</rdf:RDF>""".encode()


def oai(records: list[dict], token: str | None, size: int, request: str) -> bytes:
    body = ""
    for r in records:
        if r.get("deleted"):
            body += (
                f'\n  <record><header status="deleted"><identifier>{r["id"]}</identifier>'
                "<datestamp>2026-11-19</datestamp></header></record>"
            )
            continue
        idents = "".join(f"<dc:identifier>{x}</dc:identifier>" for x in r["identifiers"])
        body += f"""
  <record>
    <header><identifier>{r["id"]}</identifier><datestamp>2026-11-19</datestamp><setSpec>chem</setSpec></header>
    <metadata>
      <oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"
                 xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/oai_dc/ http://www.openarchives.org/OAI/2.0/oai_dc.xsd">
        <dc:title>{r["title"]}</dc:title><dc:creator>D. Author</dc:creator><dc:subject>Chemistry</dc:subject>
        <dc:description>Abstract.</dc:description><dc:date>2026-11-19</dc:date><dc:type>article</dc:type>
        {idents}<dc:language>eng</dc:language>
      </oai_dc:dc>
    </metadata>
  </record>"""
    token_el = ""
    if token is not None:
        token_el = f'<resumptionToken completeListSize="{size}" cursor="0">{token}</resumptionToken>'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">
  <responseDate>2026-11-21T10:00:00Z</responseDate>
  <request verb="ListRecords">{request}</request>
  <ListRecords>{body}
  {token_el}
  </ListRecords>
</OAI-PMH>""".encode()


def oai_error(code: str, message: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
  <responseDate>2026-11-21T11:00:00Z</responseDate>
  <request verb="ListRecords">http://repo.example/oai</request>
  <error code="{code}">{message}</error>
</OAI-PMH>""".encode()


def crossref(items: list[dict], cursor: str | None, total: int) -> bytes:
    works = [
        {
            "DOI": i["doi"],
            "title": [i["title"]],
            "container-title": ["Crossref Journal of Tests"],
            "subject": ["Spectroscopy"],
            "author": [{"given": "E.", "family": "Author"}],
            "published": {"date-parts": [[2026, 11, 18]]},
            "type": "journal-article",
            "language": "en",
            "link": (
                [{"URL": i["pdf"], "content-type": "application/pdf", "intended-application": "text-mining"}]
                if i.get("pdf")
                else []
            ),
        }
        for i in items
    ]
    message = {"total-results": total, "items": works, "items-per-page": len(works), "query": {}}
    if cursor is not None:
        message["next-cursor"] = cursor
    return json.dumps(
        {"status": "ok", "message-type": "work-list", "message-version": "1.0.0", "message": message}
    ).encode()


@dataclass
class FeedServer:
    """Serves the feeds below; `requests` records (path, query, headers) of every request."""

    base: str = ""
    requests: list[tuple[str, dict, dict]] = field(default_factory=list)
    rss2_items: list[dict] = field(default_factory=list)
    rss2_version: int = 1

    def url(self, path: str) -> str:
        return self.base + path

    def pdf(self, name: str) -> str:
        return self.url(f"/pdf/{name}")

    # the corpus: 3 arXiv entries over 2 pages, an RSS 2.0 and an RSS 1.0 journal, a 2-page OAI-PMH list,
    # a 2-page Crossref listing; DOI 10.5555/tests.2 and the same PDF links recur across sources
    def arxiv_entries(self) -> list[dict]:
        return [
            {"id": "2611.00001v1", "date": "2026-11-20T10:00:00Z", "title": "Paper A", "pdf": self.pdf(SMALL_A)},
            {
                "id": "2611.00002v1",
                "date": "2026-11-19T10:00:00Z",
                "title": "Paper B",
                "pdf": self.pdf(SMALL_B),
                "doi": "10.5555/tests.2",
            },
            {
                "id": "2611.00003v1",
                "date": "2026-11-18T10:00:00Z",
                "title": "Dead link",
                "pdf": self.pdf("missing.pdf"),
            },
        ]

    def handle(self, path: str, query: dict, headers: dict) -> tuple[int, dict, bytes]:
        q = {k: v[0] for k, v in query.items()}
        if path.startswith("/pdf/"):
            file = PDFS / path.removeprefix("/pdf/")
            if file.name != path.removeprefix("/pdf/") or not file.is_file():
                return 404, {}, b"not found"
            return 200, {"Content-Type": "application/pdf"}, file.read_bytes()
        if path == "/arxiv/api/query":
            start, size = int(q.get("start", 0)), int(q.get("max_results", 10))
            entries = self.arxiv_entries()
            return (
                200,
                {"Content-Type": "application/atom+xml"},
                atom_page(entries[start : start + size], len(entries), start),
            )
        if path == "/journal/rss2.xml":
            etag = f'"toc-v{self.rss2_version}"'
            if headers.get("If-None-Match") == etag:
                return 304, {"ETag": etag}, b""
            return 200, {"ETag": etag, "Content-Type": "application/rss+xml"}, rss2(self.rss2_items)
        if path == "/journal-ru/rss.rdf":
            modified = formatdate(1_790_000_000, usegmt=True)
            if headers.get("If-Modified-Since") == modified:
                return 304, {"Last-Modified": modified}, b""
            items = [{"doi": "10.5555/tests.6", "title": "Скан статьи", "pdf": self.pdf(SCAN), "lang": "ru"}]
            return 200, {"Last-Modified": modified}, rss1(items)
        if path == "/oai":
            if q.get("verb") != "ListRecords":
                return 200, {}, oai_error("badVerb", "only ListRecords here")
            if q.get("from", "") > "2026-11-19":  # every record's datestamp is 2026-11-19
                return 200, {}, oai_error("noRecordsMatch", f"nothing new since {q['from']}")
            if q.get("resumptionToken") == "tok-1":
                records = [
                    {"id": "oai:repo.example:2", "deleted": True},
                    {
                        "id": "oai:repo.example:3",
                        "title": "Paper A again",
                        "identifiers": [self.pdf(SMALL_A), "http://repo.example/record/3"],
                    },
                ]
                return 200, {}, oai(records, "", 3, "resumptionToken=tok-1")
            if "resumptionToken" in q:
                return 200, {}, oai_error("badResumptionToken", "expired")
            records = [
                {
                    "id": "oai:repo.example:1",
                    "title": "Paper B again",
                    "identifiers": ["https://doi.org/10.5555/tests.2", self.pdf(SMALL_B)],
                }
            ]
            return 200, {}, oai(records, "tok-1", 3, "metadataPrefix=oai_dc")
        if path == "/crossref/works":
            if "from-index-date" in q.get("filter", ""):
                return 200, {}, crossref([], None, 0)
            pages = {
                "*": ([{"doi": "10.5555/tests.4", "title": "Paper D, no PDF"}], "c1"),
                "c1": (
                    [
                        {"doi": "10.5555/tests.8", "title": "Scanned paper", "pdf": self.pdf(SCAN)},
                        {"doi": "10.5555/TESTS.2", "title": "Paper B", "pdf": self.pdf(SMALL_B)},
                    ],
                    "c2",
                ),
                "c2": ([], "c3"),
            }
            items, cursor = pages.get(q.get("cursor", "*"), ([], None))
            return 200, {"Content-Type": "application/json"}, crossref(items, cursor, 3)
        if path.startswith("/real/"):  # a real saved document, as its publisher or API sent it
            folder, _, name = path.removeprefix("/real/").partition("/")
            file = REAL_FEEDS / folder / name
            if folder not in ("arxiv", "oai", "crossref", "rss") or file.name != name or not file.is_file():
                return 404, {}, b"not found"
            kinds = {
                "arxiv": "application/atom+xml",
                "oai": "text/xml",
                "crossref": "application/json",
                "rss": "application/xml",
            }
            if headers.get("If-None-Match") == f'"{name}"':
                return 304, {"ETag": f'"{name}"'}, b""
            return 200, {"Content-Type": kinds[folder], "ETag": f'"{name}"'}, file.read_bytes()
        if path == "/broken.xml":
            return 200, {}, b"<?xml version='1.0'?><rss version='2.0'><channel><item><title>cut off"
        if path == "/flaky":
            return 500, {}, b"internal error"
        if path == "/redirect-to-metadata":
            return 302, {"Location": "http://169.254.169.254/latest/meta-data"}, b""
        return 404, {}, b"no such feed"


def start_feed_server(feeds: FeedServer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            parsed = urlparse(self.path)
            query = parse_qs(parsed.query)
            headers = dict(self.headers.items())
            feeds.requests.append((parsed.path, query, headers))
            status, extra, body = feeds.handle(parsed.path, query, headers)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    feeds.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
