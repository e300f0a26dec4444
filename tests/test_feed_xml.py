"""XML that cannot be abused, one error tree for feed input, and the policy for what is read despite a problem.

Every XML source (arXiv, RSS/Atom through feedparser, OAI-PMH) is parsed with entity declarations forbidden:
a billion-laughs document and an external entity pointing at a local file are refused, also when their DOCTYPE
follows a 5 KB comment and when the document is UTF-16; a DOCTYPE without entity declarations is read."""

from __future__ import annotations

import asyncio

import pytest

from processors.ingest.feeds import FEED_WARNINGS, FeedIngester, FeedState, load_config
from sciqag.feed_formats import FeedFormatError, parse_arxiv_atom, parse_crossref, parse_oai_pmh, parse_rss

from . import feed_server as fs

LAUGHS = """<!DOCTYPE {root} [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>"""
EXTERNAL = '<!DOCTYPE {root} [ <!ENTITY xxe SYSTEM "{uri}"> ]>'
# a comment with markup-like text in it: a byte search of the first 4 KB, or feedparser's own DOCTYPE handling
# (which looks only before the first "<name"), stops before the DOCTYPE that follows
LONG_COMMENT = "<!-- " + "a feed generator's banner <b>bold</b> " * 140 + "-->\n"
assert len(LONG_COMMENT) > 5000

DOCUMENTS = {  # kind -> (parser, root element, the document around {doctype} and {ref})
    "rss": (
        parse_rss,
        "rss",
        '<rss version="2.0"><channel><title>J</title><item><title>{ref}</title>'
        "<link>http://j.example/a.pdf</link></item></channel></rss>",
    ),
    "atom": (
        parse_rss,
        "feed",
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>J</title><entry><id>urn:x:1</id>'
        "<title>{ref}</title></entry></feed>",
    ),
    "arxiv": (
        parse_arxiv_atom,
        "feed",
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/abs/1'
        "</id><title>{ref}</title></entry></feed>",
    ),
    "oai-pmh": (
        parse_oai_pmh,
        "OAI-PMH",
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>{ref}'
        "</responseDate><ListRecords/></OAI-PMH>",
    ),
}


def _document(kind: str, doctype: str, ref: str, *, comment: bool, utf16: bool) -> bytes:
    _, root, body = DOCUMENTS[kind]
    text = (
        '<?xml version="1.0" encoding="{}"?>\n'.format("UTF-16" if utf16 else "UTF-8")
        + (LONG_COMMENT if comment else "")
        + doctype.replace("{root}", root)
        + "\n"
        + body.format(ref=ref)
    )
    return text.encode("utf-16") if utf16 else text.encode()


@pytest.mark.parametrize("utf16", [False, True], ids=["utf8", "utf16"])
@pytest.mark.parametrize("comment", [False, True], ids=["at-start", "after-5KB-comment"])
@pytest.mark.parametrize("kind", list(DOCUMENTS))
def test_billion_laughs_and_external_entities_are_refused(kind, comment, utf16, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    parser = DOCUMENTS[kind][0]
    for doctype, ref in ((LAUGHS, "&lol9;"), (EXTERNAL.replace("{uri}", secret.as_uri()), "&xxe;")):
        data = _document(kind, doctype, ref, comment=comment, utf16=utf16)
        with pytest.raises(FeedFormatError) as info:
            parser(data)
        assert info.value.kind == "xml_entities_refused", (kind, str(info.value))
        assert "TOP-SECRET" not in str(info.value) and "lollollol" not in str(info.value)


def test_feedparsers_own_xml_parser_is_defusedxmls():
    """feedparser falls back to Python's expat reader (which expands internal entities) if this one fails to import."""
    import xml.sax

    import feedparser.api
    from defusedxml.expatreader import DefusedExpatParser

    reader = xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS)
    assert isinstance(reader, DefusedExpatParser) and reader.forbid_entities and not reader.forbid_dtd


def test_an_ill_formed_document_is_read_without_its_entities_expanded(tmp_path):
    """Broken before its DOCTYPE, so no XML parser reaches the declarations: feedparser's loose parser reads it, and
    it processes no DTD (no nesting, no external entity)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    head = "<!-- banner -->\n<?xml version='1.0'?>\n"  # a declaration not at the start: not well-formed
    for doctype, ref in (
        (LAUGHS.replace("{root}", "rss"), "&lol9;"),
        (EXTERNAL.replace("{root}", "rss").replace("{uri}", secret.as_uri()), "&xxe;"),
    ):
        data = (
            head + doctype + f"<rss><channel><item><title>t {ref}</title><link>http://j.example/1</link>"
            "</item></channel></rss>"
        ).encode()
        try:
            page = parse_rss(data)
        except FeedFormatError as exc:
            assert exc.kind in ("xml_entities_refused", "malformed_feed")
            continue
        (entry,) = page.entries
        assert len(entry.title) < 100 and "TOP-SECRET" not in entry.title and not page.complete


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">',
        "<!DOCTYPE rss>",
    ],
)
@pytest.mark.parametrize("utf16", [False, True], ids=["utf8", "utf16"])
def test_a_harmless_doctype_is_read(doctype, utf16):
    body = (
        '<?xml version="1.0" encoding="{}"?>\n'.format("UTF-16" if utf16 else "UTF-8")
        + LONG_COMMENT
        + doctype
        + '<rss version="0.91"><channel><title>J</title><language>en</language><item>'
        '<title>Not a <![CDATA[<!DOCTYPE x [<!ENTITY y "z">]>]]> declaration</title>'
        "<link>http://j.example/a.pdf</link></item></channel></rss>"
    )
    page = parse_rss(body.encode("utf-16") if utf16 else body.encode())
    (entry,) = page.entries
    assert entry.title == 'Not a <!DOCTYPE x [<!ENTITY y "z">]> declaration' and entry.pdf_url.endswith("a.pdf")
    assert entry.language == "en" and page.complete and not page.warnings


def test_an_external_dtd_is_never_loaded(tmp_path):
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY secret "TOP-SECRET-CONTENT">')
    for parser, doc in (
        (
            parse_rss,
            '<rss version="2.0"><channel><title>J</title><item><title>x &secret;</title>'
            "<link>http://j.example/1</link></item></channel></rss>",
        ),
        (
            parse_oai_pmh,
            '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>&secret;'
            "</responseDate><ListRecords/></OAI-PMH>",
        ),
    ):
        data = f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{dtd.as_uri()}">\n{doc}'.encode()
        try:
            page = parser(data)
        except FeedFormatError as exc:  # OAI-PMH: an undefined entity
            assert exc.kind == "malformed_feed" and "TOP-SECRET" not in str(exc)
            continue
        assert "TOP-SECRET" not in repr(page)


# -- one error tree ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parser, data, kind",
    [
        (parse_oai_pmh, b'<?xml version="1.0" encoding="big5"?><OAI-PMH/>', "unreadable_encoding"),
        (parse_arxiv_atom, b'<?xml version="1.0" encoding="x-no-such"?><feed/>', "unreadable_encoding"),
        (parse_oai_pmh, '<?xml version="1.0" encoding="utf-8"?><OAI-PMH/>'.encode("utf-16"), "unreadable_encoding"),
        (parse_arxiv_atom, b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>", "malformed_feed"),
        (parse_crossref, b"\xff\xfe{", "unreadable_encoding"),
        (parse_crossref, b"[1, 2]", "malformed_feed"),
        (parse_crossref, b'{"status": "ok", "message": []}', "malformed_feed"),
        (
            parse_crossref,
            b'{"status": "ok", "message-type": "work-list", "message": {"items": {"a": 1}}}',
            "malformed_feed",
        ),
        (parse_crossref, b'{"status": "failed", "message": {"x": 1}}', "feed_api_error"),
        (parse_crossref, b'{"status": "ok", "message-type": "prefix", "message": {"name": "x"}}', "malformed_feed"),
    ],
)
def test_unreadable_input_is_a_feed_format_error_with_a_reason(parser, data, kind):
    with pytest.raises(FeedFormatError) as info:
        parser(data)
    assert info.value.kind == kind


def test_rss_never_raises_anything_but_a_feed_format_error():
    for data in (
        b"",
        b"\x00\xff" * 50,
        b'<?xml version="1.0" encoding="big5"?><rss><channel><item><title>\xa4\xa4',
        b'<?xml version="1.0" encoding="x-bogus"?><rss version="2.0"><channel/></rss>',
        b"{}",
        b"<",
    ):
        try:
            parse_rss(data)
        except FeedFormatError:
            pass


def test_odd_crossref_items_are_skipped_with_a_warning():
    body = (
        b'{"status": "ok", "message-type": "work-list", "message": {"items": [7, {"title": ["no DOI"]}, '
        b'{"DOI": "10.5555/A", "title": ["T <i>x</i>\\n y"], "author": [{"name": "A Consortium"}, {"given": "B"}],'
        b' "published": {"date-parts": [[2020, 1]]},'
        b' "link": [{"URL": "https://l.example/content/pdf/10.5555/a.pdf",'
        b' "content-type": "unspecified"}]}, {"DOI": ["10.5555/b"]}, '
        b'{"DOI": "10.5555/c", "published": "2020", "author": "x", "title": 5}]}}'
    )
    page = parse_crossref(body)
    entry, odd = page.entries
    assert entry.title == "T x y" and entry.authors == ["A Consortium", "B"] and entry.pdf_url.endswith("a.pdf")
    assert entry.published == "2020-01"
    assert (odd.doi, odd.title, odd.published, odd.authors) == ("10.5555/c", "", "", [])
    assert page.warnings == ["unreadable_entries: 3 items without a DOI or of an unexpected shape"]


# -- silent zeros become warnings; the checkpoint does not move past what was not read -----------------------


def test_prism_in_every_namespace_and_atom_pdf_links():
    for uri in (
        "http://prismstandard.org/namespaces/1.2/basic/",
        "http://prismstandard.org/namespaces/basic/3.0/",
        "http://purl.org/rss/1.0/modules/prism/",
        "http://prismstandard.org/namespaces/basic/2.0/",
    ):
        data = fs.rss1([{"doi": "10.5555/z", "title": "Статья", "pdf": "http://h/pdf/z.pdf"}])
        data = data.replace(b"http://prismstandard.org/namespaces/basic/2.0/", uri.encode()).replace(b"prism:", b"p:")
        data = data.replace(b"xmlns:prism=", b"xmlns:p=").replace(b"<dc:identifier>doi:10.5555/z</dc:identifier>", b"")
        data = data.replace(b'rdf:about="https://doi.org/10.5555/z"', b'rdf:about="http://h/z"')
        (entry,) = parse_rss(data).entries
        assert entry.doi == "10.5555/z" and entry.journal == "Вестник испытаний", uri
    atom = b"""<a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>J</a:title><a:entry><a:id>urn:1</a:id>
        <a:title type="html">A &lt;i&gt;novel&lt;/i&gt;
          catalyst</a:title><a:link rel="alternate" href="http://j.example/1"/>
        <a:link rel="related" type="application/pdf" href="http://j.example/1.pdf"/></a:entry></a:feed>"""
    (entry,) = parse_rss(atom).entries
    assert entry.title == "A novel catalyst" and entry.pdf_url == "http://j.example/1.pdf" and entry.journal == "J"


def test_oai_records_in_another_metadata_format_are_a_warning():
    data = fs.oai([{"id": "oai:r:1", "title": "T", "identifiers": ["http://h/pdf/a.pdf"]}], None, 0, "x")
    marc = data.replace(
        b'oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"',
        b'marc:record xmlns:oai_dc="urn:x" xmlns:marc="http://www.loc.gov/MARC21/slim"',
    )
    marc = marc.replace(b"</oai_dc:dc>", b"</marc:record>")
    page = parse_oai_pmh(marc)
    assert not page.entries and page.warnings[0].startswith("unknown_metadata_format: 1 records not in oai_dc")


def _warnings(source: str, kind: str) -> float:
    return FEED_WARNINGS.labels(source, kind)._value.get()


def test_the_ingester_counts_warnings_and_refetches_what_it_could_not_read_whole(tmp_path):
    server_state = fs.FeedServer()
    server = fs.start_feed_server(server_state)
    real = "/real/rss/kurtmckee__tests__entities__query_variable_entry.xml"  # recovered by the loose parser
    clean = "/real/rss/kurtmckee__docs__examples__examples__atom10.xml"
    try:
        cfg = tmp_path / "feeds.toml"
        cfg.write_text(
            f'state_dir = "{tmp_path / "state"}"\nallow_hosts = ["127.0.0.1"]\n'
            + "".join(
                f'[[source]]\nname = "{n}"\nkind = "{k}"\nurl = "{server_state.url(u)}"\nmin_request_interval_s = 0\n'
                "retries = 0\n"
                for n, k, u in (
                    ("recovered", "rss", real),
                    ("clean", "atom", clean),
                    (
                        "members",
                        "crossref",
                        "/real/crossref/sckott__test__cassettes__test-members__test_members.yaml_0.json",
                    ),
                )
            )
        )
        config = load_config(cfg, tmp_path)
        before = {
            n: _warnings(n, k)
            for n, k in (("recovered", "recovered_malformed_feed"), ("members", "not_a_works_listing"))
        }

        class Nothing:
            async def submit(self, record): ...

            async def dead_letter(self, record): ...

        async def poll_all():
            import aiohttp

            state = FeedState(config.state_dir / "feeds.sqlite")
            try:
                async with aiohttp.ClientSession() as session:
                    ingester = FeedIngester(config, state, Nothing(), session)
                    return [await ingester.poll(s) for s in config.sources]
            finally:
                state.close()

        recovered, cleanly, members = asyncio.run(poll_all())
        assert not recovered.errors and recovered.warnings[0].startswith("recovered_malformed_feed")
        assert not cleanly.errors and not cleanly.warnings and cleanly.entries == 1
        assert not members.errors and members.warnings[0].startswith("not_a_works_listing") and members.pages == 1
        assert _warnings("recovered", "recovered_malformed_feed") == before["recovered"] + 1
        assert _warnings("members", "not_a_works_listing") == before["members"] + 1
        server_state.requests.clear()
        recovered, cleanly, _ = asyncio.run(poll_all())
        sent = {p: h for p, _, h in server_state.requests}
        assert "If-None-Match" not in sent[real] and not recovered.not_modified  # read whole again
        assert sent[clean]["If-None-Match"] and cleanly.not_modified
    finally:
        server.shutdown()
