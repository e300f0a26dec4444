"""Every real feed document in ../shared/data/feeds read by the parser for its kind (see that folder's README).

The table below pins what each arXiv, OAI-PMH and Crossref document gives: its entry count and, where it gives
none, why (an OAI-PMH protocol error code, a warning kind, or the FeedFormatError kind it is refused with). The RSS/Atom
documents come from feedparser's own tests: each says in an `Expect:` comment what feedparser reads from it, checked
here against the reading our guarded parser made; entry counts and titles are checked against that reading too.
"""

from __future__ import annotations

import datetime
import html
import json
import re
import time
from pathlib import Path

import pytest

from sciqag.feed_formats import (
    FeedFormatError,
    flatten_html,
    language_hint,
    parse_arxiv_atom,
    parse_crossref,
    parse_oai_pmh,
    parse_rss,
    read_feed,
)

from .conftest import SHARED

FEEDS = SHARED / "feeds"
pytestmark = pytest.mark.skipif(not FEEDS.is_dir(), reason=f"{FEEDS} is not here (it is beside the project in CI)")

# file -> (entries, "" | OAI-PMH error code | warning kind) or (None, FeedFormatError kind)
ARXIV = {  # files start with lukasschwab__tests__fixtures__
    "id_0000.0000_s0_m100_8b51d9633a68.xml": (0, ""),
    "id_0808.05394_s0_m100_7b0c7d0a7cdd.xml": (0, ""),
    "id_1707.08567_s0_m100_6a1afebfc6a3.xml": (1, ""),
    "id_astro-ph_0601001_s0_m100_3150dca9dc76.xml": (1, ""),
    "id_hep-ex_0406020v1_s0_m100_84b15d66c0ce.xml": (1, ""),
    "id_list=1111.2011v2.xml": (1, ""),
    "q_testing_s0_m100_cfe7536492ca.xml": (100, ""),
    "q_testing_s0_m10_bc5a6c384fe9.xml": (10, ""),
    "q_testing_s0_m15_80c242b59d59.xml": (15, ""),
    "q_testing_s10_m10_34e56e15aaac.xml": (10, ""),
    "q_testing_s20_m10_348a237fecab.xml": (10, ""),
    "q_testing_s30_m10_f2e39f0143dc.xml": (10, ""),
    "q_testing_s50_m10_7f488ab8598c.xml": (10, ""),
    "q_testing_s5_m10_c0e94a259d4a.xml": (10, ""),
    "q_testing_s5_m15_bbcf6b23085b.xml": (15, ""),
    "search_query=au:del_maestro+AND+ti:checkerboard.xml": (1, ""),
    "search_query=au:del_maestro+ANDNOT+%28ti:checkerboard+OR+ti:Pyrochlore%29.xml": (10, ""),
    "search_query=au:del_maestro.xml": (10, ""),
}
OAI = {
    "infrae__src__oaipmh__tests__fake1__00002.xml": (None, "malformed_feed"),
    "infrae__src__oaipmh__tests__fake1__00004.xml": (1, ""),
    "infrae__src__oaipmh__tests__fake1__00005.xml": (16, ""),
    "infrae__src__oaipmh__tests__fake2__00001.xml": (1, ""),
    "infrae__src__oaipmh__tests__fake2__00002.xml": (79, ""),
    "infrae__src__oaipmh__tests__fake4__00001.xml": (None, "malformed_feed"),
    "mikesaelim__src__test__resources__ErrorResponseBadVerb.xml": (0, "badVerb"),
    "mikesaelim__src__test__resources__ErrorResponseIdDoesNotExist.xml": (0, "idDoesNotExist"),
    "mikesaelim__src__test__resources__ErrorResponseNoRecordsMatch.xml": (0, "noRecordsMatch"),
    "mloesch__sickle__tests__sample_data__GetRecord.xml": (1, ""),
    "mloesch__sickle__tests__sample_data__GetRecord_utf8test.xml": (1, ""),
    "mloesch__sickle__tests__sample_data__Identify.xml": (None, "malformed_feed"),
    "mloesch__sickle__tests__sample_data__ListIdentifiers2.xml": (None, "malformed_feed"),
    "mloesch__sickle__tests__sample_data__ListRecords.xml": (1, ""),
    "mloesch__sickle__tests__sample_data__ListRecords3.xml": (1, ""),
    "mloesch__sickle__tests__sample_data__ListRecords4.xml": (1, ""),
    "mloesch__sickle__tests__sample_data__ListRecordsBroken.xml": (None, "malformed_feed"),
    "mloesch__sickle__tests__sample_data__ListSets.xml": (None, "malformed_feed"),
    "mloesch__sickle__tests__sample_data__badArgument.xml": (0, "badArgument"),
    "mloesch__sickle__tests__sample_data__badResumptionToken.xml": (0, "badResumptionToken"),
    "mloesch__sickle__tests__sample_data__cannotDisseminateFormat.xml": (0, "cannotDisseminateFormat"),
    "mloesch__sickle__tests__sample_data__idDoesNotExist.xml": (0, "idDoesNotExist"),
    "mloesch__sickle__tests__sample_data__noRecordsMatch.xml": (0, "noRecordsMatch"),
}
CROSSREF = {  # files start with sckott__test__cassettes__
    "test-content_negotation__test_content_negotiation_citeproc_json.yaml_1.json": (None, "malformed_feed"),
    "test-cursor__test_cursor_max.yaml_0.json": (20, ""),
    "test-cursor__test_cursor_max.yaml_1.json": (20, ""),
    "test-cursor__test_cursor_max.yaml_2.json": (20, ""),
    "test-cursor__test_cursor_max.yaml_3.json": (20, ""),
    "test-cursor__test_cursor_max.yaml_4.json": (20, ""),
    "test-funders__test_funders_field_queries.yaml_0.json": (100, ""),
    "test-funders__test_funders_filter_works.yaml_0.json": (20, ""),
    "test-funders__test_funders_query.yaml_0.json": (0, "not_a_works_listing"),
    "test-journals__test_journals.yaml_0.json": (0, "not_a_works_listing"),
    "test-journals__test_journals_field_queries.yaml_0.json": (20, ""),
    "test-journals__test_journals_mixed_ids_warn.yaml_0.json": (None, "malformed_feed"),
    "test-journals__test_journals_mixed_ids_works_warn.yaml_0.json": (20, ""),
    "test-journals__test_journals_works.yaml_1.json": (20, ""),
    "test-licenses__test_licenses.yaml_0.json": (0, "not_a_works_listing"),
    "test-licenses__test_licenses_query.yaml_1.json": (0, "not_a_works_listing"),
    "test-members__test_members.yaml_0.json": (0, "not_a_works_listing"),
    "test-members__test_members_field_queries.yaml_0.json": (7, ""),
    "test-members__test_members_mixed_ids_works_warn.yaml_0.json": (20, ""),
    "test-members__test_members_query.yaml_0.json": (0, "not_a_works_listing"),
    "test-pagination_params__test_limit_of_zero_without_id.yaml_0.json": (0, "not_a_works_listing"),
    "test-prefixes__test_prefixes.yaml_0.json": (None, "malformed_feed"),
    "test-prefixes__test_prefixes_field_queries.yaml_0.json": (20, ""),
    "test-prefixes__test_prefixes_mixed_ids_works_warn.yaml_0.json": (20, ""),
    "test-prefixes__test_prefixes_mixed_ids_works_warn.yaml_2.json": (0, ""),
    "test-registration_agency__test_registration_agency.yaml_0.json": (None, "malformed_feed"),
    "test-settings__test_no_ua_string.yaml_0.json": (1, ""),
    "test-settings__test_ua_string.yaml_0.json": (1, ""),
    "test-settings__test_ua_string_registration_agency.yaml_0.json": (None, "malformed_feed"),
    "test-types__test_types.yaml_0.json": (0, "not_a_works_listing"),
    "test-types__test_types_mixed_ids_warn.yaml_0.json": (None, "malformed_feed"),
    "test-types__test_types_mixed_ids_works_warn.yaml_2.json": (20, ""),
    "test-types__test_types_query.yaml_0.json": (0, "not_a_works_listing"),
    "test-works__test_works_field_queries.yaml_0.json": (20, ""),
    "test-works__test_works_field_query_publisher_name.yaml_0.json": (20, ""),
    "test-works__test_works_mixed_ids_warn.yaml_0.json": (1, ""),
    "test-works__test_works_mixed_ids_warn.yaml_2.json": (1, ""),
    "test-works__test_works_no_id_withlimit.yaml_0.json": (2, ""),
    "test-works__test_works_sample.yaml_0.json": (2, ""),
    "test-works__test_works_with_many_ids.yaml_0.json": (1, ""),
    "test-works__test_works_with_many_ids.yaml_1.json": (1, ""),
    "test-works__test_works_with_many_ids.yaml_2.json": (1, ""),
    "test-works__test_works_with_many_ids.yaml_4.json": (1, ""),
    "test-works__test_works_with_one_id.yaml_0.json": (1, ""),
    "test-workscontainer__test_workscontainer_failure_behavior.yaml_0.json": (None, "malformed_feed"),
    "test-workscontainer__test_workscontainer_failure_behavior.yaml_1.json": (None, "malformed_feed"),
    "test-workscontainer__test_workscontainer_with_cursor.yaml_1.json": (5, ""),
    "test-workscontainer__test_workscontainer_with_cursor.yaml_3.json": (5, ""),
    "test-workscontainer__test_workscontainer_with_many.yaml_0.json": (5, ""),
    "test-workscontainer__test_workscontainer_with_one_id.yaml_0.json": (1, ""),
    "test-workscontainer__test_workscontainer_with_two_ids.yaml_0.json": (1, ""),
    "test-workscontainer__test_workscontainer_with_two_ids.yaml_1.json": (1, ""),
    "test-worksquery__test_worksquery_execute.yaml_0.json": (3, ""),
    "test-worksquery__test_worksquery_same_as_wrapped_method_real_requests.yaml_0.json": (3, ""),
}
# RSS/Atom documents refused, and why: ill-formed, and nothing in it could be read
RSS_REFUSED = {
    "kurtmckee__tests__illformed__rss_incomplete_cdata.xml": "malformed_feed",  # the XML declaration after a comment,
    # then a CDATA section never closed: the loose parser's one entry has no title, id or link
}
# `Expect:` lines that do not hold, and why (none is about this project's reading)
EXPECT_NOT_CHECKED = {
    # feedparser guesses an undeclared encoding only with chardet installed (their SkipUnless: chardet)
    "kurtmckee__tests__illformed__chardet__eucjp.xml",
    "kurtmckee__tests__illformed__chardet__euckr.xml",
    "kurtmckee__tests__illformed__chardet__gb2312.xml",
    "kurtmckee__tests__illformed__chardet__windows1255.xml",
    # feedparser 6.0.11+ reads itunes:explicit "no" as None; the test file predates it
    "kurtmckee__tests__wellformed__itunes__itunes_item_explicit_false.xml",
}
DOCUMENT_URL = "http://127.0.0.1:8097/"  # the base feedparser's tests serve their documents under


def _files(folder: str) -> list[Path]:
    return sorted((FEEDS / folder).iterdir())


def _short(name: str) -> str:
    for prefix in ("lukasschwab__tests__fixtures__", "sckott__test__cassettes__"):
        name = name.removeprefix(prefix)
    return name


def _outcome(parser, data: bytes):
    try:
        page = parser(data)
    except FeedFormatError as exc:
        return (None, exc.kind), None
    extra = page.error_code or (page.warnings[0].split(":", 1)[0] if page.warnings else "")
    return (len(page.entries), extra), page


@pytest.mark.parametrize(
    "folder, parser, table",
    [
        ("arxiv", parse_arxiv_atom, ARXIV),
        ("oai", parse_oai_pmh, OAI),
        ("crossref", parse_crossref, CROSSREF),
    ],
)
def test_every_api_document_gives_its_pinned_entries(folder, parser, table):
    files = _files(folder)
    assert sorted(_short(f.name) for f in files) == sorted(table), "a document was added or removed: pin it"
    got = {}
    for f in files:
        outcome, page = _outcome(parser, f.read_bytes())
        got[_short(f.name)] = outcome
        if page is None:
            continue
        for e in page.entries:  # fields every entry of these APIs has, read whole and flattened to one line
            assert e.entry_id and (e.title or folder == "crossref"), (f.name, e)  # Crossref: issues have none
            assert "<" not in e.title and "\n" not in e.title and "  " not in e.title, (f.name, e.title)
            assert all(a and "<" not in a for a in e.authors), (f.name, e.authors)
            if folder == "arxiv":
                assert e.entry_id.startswith("http://arxiv.org/abs/")
                assert re.match(r"https?://arxiv.org/pdf/", e.pdf_url)
                assert e.published[:2] in ("19", "20") and e.categories and e.abstract
            if folder == "crossref":
                assert e.doi == e.entry_id and e.doi == e.doi.lower() and e.doi.startswith("10.")
    assert got == table


def _crossref_items(name: str) -> list[dict]:
    doc = json.loads((FEEDS / "crossref" / name).read_text())
    return doc["message"]["items"] if "items" in doc["message"] else [doc["message"]]


def test_crossref_fields_against_the_json_itself():
    """Per item: the DOI, the title without markup, every author (given+family or `name`), the PDF link."""
    checked = 0
    for f in _files("crossref"):
        outcome, page = _outcome(parse_crossref, f.read_bytes())
        if not page or not page.entries:
            continue
        items = {i["DOI"].lower(): i for i in _crossref_items(f.name) if isinstance(i, dict) and i.get("DOI")}
        for e in page.entries:
            item = items[e.doi]
            assert e.title == " ".join(html.unescape(re.sub(r"<[^>]+>", "", " ".join(item.get("title") or []))).split())
            named = [a for a in item.get("author") or [] if a.get("given") or a.get("family") or a.get("name")]
            assert len(e.authors) == len(named)
            links = [x["URL"] for x in item.get("link") or []]
            typed = [x["URL"] for x in item.get("link") or [] if x.get("content-type") == "application/pdf"]
            assert e.pdf_url == (typed[0] if typed else e.pdf_url) and (not e.pdf_url or e.pdf_url in links)
            checked += 4
    assert checked >= 4 * 440
    works = {
        e.doi: e
        for f in _files("crossref")
        for e in (_outcome(parse_crossref, f.read_bytes())[1] or type("P", (), {"entries": []})).entries
    }
    # JATS/HTML markup and newlines in titles; an author given only by name; PDF links typed "unspecified"
    ru = next(e for e in works.values() if "luminophore" in e.title)
    assert ru.title.startswith("Encapsulation of the [Ru(bpy)3]2+ luminophore in a unique hydrogen-b")
    assert works["10.7717/peerj.14688"].title.startswith("Feeding habits of four-finger threadfin fish, Eleutheronema")
    assert "Sudesiqin" in works["10.2478/v10285-012-0032-1"].authors
    assert works["10.15554/pci.cta-17"].authors == ["Concrete Technology Associates"]
    unspecified = [
        e
        for e in works.values()
        if e.pdf_url
        and not any(x.get("content-type") == "application/pdf" for x in _find_item(e.doi).get("link") or [])
    ]
    assert len(unspecified) >= 50 and all(".pdf" in e.pdf_url.lower() or "/pdf/" in e.pdf_url for e in unspecified)


_ITEMS: dict[str, dict] = {}


def _find_item(doi: str) -> dict:
    if not _ITEMS:
        for f in _files("crossref"):
            try:
                for i in _crossref_items(f.name):
                    if isinstance(i, dict) and i.get("DOI"):
                        _ITEMS[i["DOI"].lower()] = i
            except (KeyError, TypeError, AttributeError):
                pass
    return _ITEMS[doi]


def test_oai_and_arxiv_sampled_fields():
    en_us = parse_oai_pmh((FEEDS / "oai" / "infrae__src__oaipmh__tests__fake2__00002.xml").read_bytes())
    assert language_hint("en_US") == "en" and language_hint("ru-RU") == "ru"
    assert [e.language for e in en_us.entries].count("en") == 56  # 37 without the 19 records saying "en_US"
    utf8 = parse_oai_pmh((FEEDS / "oai" / "mloesch__sickle__tests__sample_data__GetRecord_utf8test.xml").read_bytes())
    (record,) = utf8.entries
    assert record.entry_id and record.title and record.language == "en"
    listing = parse_oai_pmh((FEEDS / "oai" / "mloesch__sickle__tests__sample_data__ListRecords.xml").read_bytes())
    assert listing.next_token and listing.entries[0].authors
    arxiv = parse_arxiv_atom((FEEDS / "arxiv" / "lukasschwab__tests__fixtures__id_list=1111.2011v2.xml").read_bytes())
    (paper,) = arxiv.entries
    assert paper.entry_id == "http://arxiv.org/abs/1111.2011v2" and paper.pdf_url == "http://arxiv.org/pdf/1111.2011v2"


# -- RSS/Atom: feedparser's expectations ----------------------------------------------------------------------


def _comment(raw: bytes) -> str:
    for encoding in ("utf-16",) if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8", "latin-1"):
        try:
            text = raw[:4000].decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw[:4000].decode("utf-16-be" if raw[:1] == b"\x00" else "utf-16-le", "replace")
    if "Expect" not in text and raw[:4] in (b"\x00<\x00!", b"<\x00!\x00"):
        text = raw[:8000].decode("utf-16-be" if raw[:1] == b"\x00" else "utf-16-le", "replace")
    match = re.search(r"<!--(.*?)-->", text, re.S)
    return match.group(1) if match else ""


def _headers(comment: str) -> dict[str, str]:
    return {k.strip().lower(): v.strip() for k, v in re.findall(r"^\s*Header:\s*([^:]+):(.*)$", comment, re.M)}


def test_every_rss_and_atom_document_reads_as_feedparser_expects():
    files = _files("rss")
    read = entries = expectations = titles = 0
    failures = []
    for f in files:
        raw = f.read_bytes()
        comment = _comment(raw)
        headers = _headers(comment)
        base = headers.get("content-location", "")
        if "__base__http_" in f.name and not base:  # relative links resolved against the document's own URL
            base = DOCUMENT_URL + f.name.split("__", 1)[1].replace("__", "/")
        ctype = headers.get("content-type", "application/xml")  # as feedparser's test server serves them
        try:
            page = parse_rss(raw, content_type=ctype, base_url=base)
        except FeedFormatError as exc:
            if RSS_REFUSED.get(f.name) != exc.kind:
                failures.append((f.name, f"refused: {exc.kind}: {exc}"))
            continue
        assert f.name not in RSS_REFUSED, f"{f.name} is read now: take it off RSS_REFUSED"
        read += 1
        result = read_feed(raw, content_type=ctype, base_url=base)
        skipped = sum(int(w.split(": ", 1)[1].split()[0]) for w in page.warnings if w.startswith("unreadable_entries"))
        if len(page.entries) + skipped != len(result.entries):
            failures.append((f.name, f"{len(page.entries)} + {skipped} skipped != {len(result.entries)} entries"))
        entries += len(page.entries)
        ours = iter(page.entries)
        for e in result.entries:  # each entry read: its title is feedparser's, flattened to text
            if e.get("id") or e.get("link") or e.get("prism_doi"):
                mine = next(ours)
                html = (e.get("title_detail") or {}).get("type") in ("text/html", "application/xhtml+xml")
                want = flatten_html(e.get("title", "")) if html else " ".join(e.get("title", "").split())
                titles += 1
                if mine.title != want or "<" in mine.title and html:
                    failures.append((f.name, f"title {mine.title!r} != {want!r}"))
        expect = re.search(r"Expect:\s*(.*)", comment)
        if expect and f.name not in EXPECT_NOT_CHECKED:
            expectations += 1
            try:
                # feedparser's own test files, evaluated as its test runner does
                ok = eval(expect.group(1).strip(), {"time": time, "datetime": datetime}, dict(result))  # noqa: S307
            except Exception as exc:  # noqa: BLE001 - reported below with the file
                ok = f"raised {exc!r}"
            if ok is not True and not (ok and not isinstance(ok, str)):
                failures.append((f.name, f"Expect: {expect.group(1)[:150]} -> {ok}"))
    assert not failures, "\n".join(f"{n}: {w}" for n, w in failures[:30]) + f"\n({len(failures)} in all)"
    assert (len(files), read, entries) == (793, 792, 55)
    assert expectations >= 780 and titles == entries, (expectations, titles)


# -- `sciqag feed --once` over real documents, into the real broker ------------------------------------------

REAL_SOURCES = [  # name, kind, served path, extra settings
    ("arxiv", "arxiv", "arxiv/lukasschwab__tests__fixtures__q_testing_s0_m10_bc5a6c384fe9.xml", "page_size = 10"),
    ("atom-toc", "atom", "rss/kurtmckee__docs__examples__examples__atom10.xml", ""),
    ("rss-ill-formed", "rss", "rss/kurtmckee__tests__illformed__rss_item_link_corrupted_ampersands.xml", ""),
    ("repository", "oai-pmh", "oai/infrae__src__oaipmh__tests__fake2__00002.xml", ""),
    (
        "crossref",
        "crossref",
        "crossref/sckott__test__cassettes__test-funders__test_funders_filter_works.yaml_0.json",
        "",
    ),
    ("crossref-members", "crossref", "crossref/sckott__test__cassettes__test-members__test_members.yaml_0.json", ""),
]


def test_feed_cli_reads_real_documents_into_the_broker(tmp_path):
    import asyncio
    import subprocess

    from processors.ingest.publish import bootstrap_servers
    from processors.local.broker import tansu_broker
    from schemas import DeadLetter, PaperSubmitted, decode
    from schemas import topics as T

    from . import feed_server as fs
    from .conftest import sciqag_exe
    from .test_feeds import _read_topic

    server_state = fs.FeedServer()
    server = fs.start_feed_server(server_state)
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\nallow_hosts = ["127.0.0.1"]\n'
        + "".join(
            f'\n[[source]]\nname = "{name}"\nkind = "{kind}"\nurl = "{server_state.url("/real/" + path)}"\n'
            f"min_request_interval_s = 0\nretries = 0\nmax_pages = 1\n{extra}\n"
            for name, kind, path, extra in REAL_SOURCES
        )
    )
    try:
        with tansu_broker() as broker:
            run = subprocess.run(
                [
                    sciqag_exe(),
                    "feed",
                    "--once",
                    "--config",
                    str(config),
                    "--broker",
                    broker,
                    "--data-dir",
                    str(tmp_path / "data"),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert run.returncode == 0, run.stdout + run.stderr[-3000:]
            rows = {line.split()[0]: line for line in run.stdout.splitlines()[1:]}
            counts = {name: tuple(int(x) for x in row.split()[2:7]) for name, row in rows.items()}
            # pages, entries, new, duplicates, dead-lettered
            assert counts == {
                "arxiv": (1, 10, 10, 0, 0),
                "atom-toc": (1, 1, 0, 0, 1),
                "rss-ill-formed": (1, 1, 0, 0, 1),
                "repository": (1, 79, 0, 0, 79),
                "crossref": (1, 20, 18, 0, 2),
                "crossref-members": (1, 0, 0, 0, 0),
            }, run.stdout
            assert (
                "recovered_malformed_feed" in rows["rss-ill-formed"]
                and "not_a_works_listing" in rows["crossref-members"]
                and "warning" not in rows["arxiv"]
            )
            bootstrap = bootstrap_servers(broker)
            papers = [decode(m.value, PaperSubmitted) for m in asyncio.run(_read_topic(bootstrap, T.PAPERS))]
            dead = [decode(m.value, DeadLetter) for m in asyncio.run(_read_topic(bootstrap, T.DLQ))]
    finally:
        server.shutdown()
    assert len(papers) == 28 and len(dead) == 83  # each entry once: 28 with a PDF link, 83 without
    assert len({p.paper_id for p in papers} | {d.paper_id for d in dead}) == 111
    titles = {p.title for p in papers}
    assert any(t.startswith("Encapsulation of the [Ru(bpy)3]2+ luminophore") for t in titles), titles
    assert all("<" not in t and "\n" not in t for t in titles)
    assert {d.error_kind for d in dead} == {"no_pdf_link"}
