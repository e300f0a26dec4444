"""Feed ingestion: the formats, paging, checkpoints, conditional GET, retries, deduplication across sources and
restarts, against a loopback server; then `sciqag feed` into a real broker and the pipeline scoring the papers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from processors.ingest.feeds import FeedConfigError, FeedIngester, FeedState, load_config, with_params
from processors.sources import SourceError, http_get
from schemas import RACAR_DIMENSIONS
from sciqag.feed_formats import FeedFormatError, parse_arxiv_atom, parse_crossref, parse_oai_pmh, parse_rss
from sciqag.ids import paper_id_for

from . import feed_server as fs
from .conftest import PDFS, SCAN, sciqag_exe, shared_pdfs
from .e2e import FAST_ENV, metric, open_store, scrape_metrics


@pytest.fixture
def feeds():
    shared_pdfs()  # skips when the real PDFs are not beside the project
    server_state = fs.FeedServer()
    server_state.rss2_items = [
        {"doi": "10.5555/tests.2", "title": "Paper B in the journal", "pdf": None},  # set once the port is known
        {"doi": "10.5555/tests.4", "title": "Paper D, no PDF"},
    ]
    server = fs.start_feed_server(server_state)
    server_state.rss2_items[0]["pdf"] = server_state.pdf(fs.SMALL_B)
    yield server_state
    server.shutdown()


def write_config(tmp_path, feeds: fs.FeedServer, inbox) -> os.PathLike:
    sources = [
        (
            "arxiv",
            "arxiv",
            feeds.url("/arxiv/api/query?search_query=cat:cond-mat.mtrl-sci&sortBy=submittedDate&sortOrder=descending"),
            "page_size = 2",
        ),
        ("journal-rss", "rss", feeds.url("/journal/rss2.xml"), ""),
        ("journal-ru", "rss", feeds.url("/journal-ru/rss.rdf"), ""),
        ("repository", "oai-pmh", feeds.url("/oai"), 'from_date = "2026-11-01"'),
        ("crossref", "crossref", feeds.url("/crossref/works?filter=type:journal-article"), "page_size = 2"),
        ("inbox", "inbox", "", f'path = "{inbox}"'),
        ("broken", "rss", feeds.url("/broken.xml"), ""),
        ("flaky", "rss", feeds.url("/flaky"), ""),
    ]
    text = f'state_dir = "{tmp_path / "feed-state"}"\nallow_hosts = ["127.0.0.1"]\n'
    for name, kind, url, extra in sources:
        text += (
            f'\n[[source]]\nname = "{name}"\nkind = "{kind}"\n'
            + (f'url = "{url}"\n' if url else "")
            + "min_request_interval_s = 0\nretries = 2\nretry_backoff_s = 0.05\npoll_interval_s = 1\n"
            + (extra + "\n" if extra else "")
        )
    path = tmp_path / "feeds.toml"
    path.write_text(text)
    return path


def fill_inbox(inbox) -> None:
    inbox.mkdir(exist_ok=True)
    shutil.copy(PDFS / fs.SMALL_B, inbox / "paper-b.pdf")  # the same paper as the DOI elsewhere: a duplicate
    (inbox / "paper-b.json").write_text(json.dumps({"doi": "https://doi.org/10.5555/tests.2", "title": "Paper B"}))
    shutil.copy(PDFS / SCAN, inbox / "scan.pdf")  # no sidecar: identified by its bytes
    (inbox / "bad.pdf").write_bytes(b"%PDF-1.4 whatever")
    (inbox / "bad.json").write_text("{not json")


# -- the formats -------------------------------------------------------------------------------------


def test_arxiv_atom_entries_and_paging_totals():
    server = fs.FeedServer(base="http://h")
    page = parse_arxiv_atom(fs.atom_page(server.arxiv_entries()[:2], 3, 0))
    assert page.total == 3 and len(page.entries) == 2
    a, b = page.entries
    assert a.entry_id == "http://arxiv.org/abs/2611.00001v1" and a.pdf_url == "http://h/pdf/" + fs.SMALL_A
    assert a.categories == ["cond-mat.mtrl-sci", "physics.chem-ph"]  # the primary category first
    assert a.authors == ["A. Author", "B. Author"] and a.published == "2026-11-20T10:00:00Z" and not a.doi
    assert b.doi == "10.5555/tests.2"
    error = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/api/errors#x</id>
        <title>Error</title><summary>incorrect id format</summary></entry></feed>"""
    with pytest.raises(FeedFormatError, match="incorrect id format"):
        parse_arxiv_atom(error)


def test_rss2_and_rss1_with_prism_and_dublin_core():
    page = parse_rss(
        fs.rss2([{"doi": "10.5555/X.1", "title": "T", "pdf": "http://h/a.pdf"}, {"doi": "10.5555/y", "title": "U"}])
    )
    first, second = page.entries
    assert first.doi == "10.5555/x.1" and first.pdf_url == "http://h/a.pdf" and first.journal == "Journal of Tests"
    assert first.language == "en" and first.authors == ["C. Author"] and first.categories == ["Analytical chemistry"]
    assert second.pdf_url == ""  # a landing page is not a PDF
    rdf = parse_rss(fs.rss1([{"doi": "10.5555/z", "title": "Статья", "pdf": "http://h/pdf/z.pdf", "lang": "ru"}]))
    (entry,) = rdf.entries
    assert entry.doi == "10.5555/z" and entry.language == "ru" and entry.pdf_url == "http://h/pdf/z.pdf"
    assert entry.journal == "Вестник испытаний" and entry.title == "Статья"


def test_oai_pmh_records_tokens_and_errors():
    page = parse_oai_pmh(
        fs.oai(
            [
                {"id": "oai:r:1", "title": "T", "identifiers": ["https://doi.org/10.5555/a", "http://h/pdf/a.pdf"]},
                {"id": "oai:r:2", "deleted": True},
            ],
            "tok",
            7,
            "x",
        )
    )
    assert page.next_token == "tok" and page.total == 7 and page.response_date == "2026-11-21T10:00:00Z"
    (entry,) = page.entries  # the deleted record is skipped
    assert entry.doi == "10.5555/a" and entry.pdf_url == "http://h/pdf/a.pdf" and entry.language == "en"
    assert entry.categories == ["Chemistry", "chem"]
    err = parse_oai_pmh(fs.oai_error("noRecordsMatch", "none"))
    assert err.error_code == "noRecordsMatch" and not err.entries
    with pytest.raises(FeedFormatError):
        parse_oai_pmh(b"<OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'><responseDate>x</responseDate></OAI-PMH>")


def test_crossref_works_listing():
    page = parse_crossref(fs.crossref([{"doi": "10.5555/A", "title": "T", "pdf": "http://h/a.pdf"}], "next", 9))
    (entry,) = page.entries
    assert page.next_token == "next" and page.total == 9
    assert (entry.doi, entry.pdf_url, entry.journal, entry.published) == (
        "10.5555/a",
        "http://h/a.pdf",
        "Crossref Journal of Tests",
        "2026-11-18",
    )
    with pytest.raises(FeedFormatError):
        parse_crossref(b'{"status": "ok"}')


@pytest.mark.parametrize(
    "parser, data, kind",
    [
        (parse_rss, b"<rss><channel><item>unclosed", "malformed_feed"),
        (parse_rss, b"<html><body>a landing page</body></html>", "malformed_feed"),
        (
            parse_rss,
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><rss><channel/></rss>',
            "xml_entities_refused",
        ),
        (parse_arxiv_atom, b"<rss version='2.0'/>", "malformed_feed"),
        (parse_oai_pmh, b"", "malformed_feed"),
        (parse_crossref, b"not json", "malformed_feed"),
    ],
)
def test_malformed_documents_raise_a_feed_error(parser, data, kind):
    with pytest.raises(FeedFormatError) as info:
        parser(data)
    assert info.value.kind == kind


def test_config_errors_are_clear(tmp_path):
    cfg = tmp_path / "f.toml"
    cfg.write_text('[[source]]\nname = "x"\nkind = "json-feed"\nurl = "http://h/"\n')
    with pytest.raises(FeedConfigError, match="kind must be one of"):
        load_config(cfg, tmp_path)
    cfg.write_text('[[source]]\nname = "x"\nkind = "rss"\nurl = "http://h/"\npoll_every = 3\n')
    with pytest.raises(FeedConfigError, match="unknown keys \\['poll_every'\\]"):
        load_config(cfg, tmp_path)
    cfg.write_text('[[source]]\nname = "x"\nkind = "rss"\nurl = "file:///etc/passwd"\n')
    with pytest.raises(FeedConfigError, match="needs an http"):
        load_config(cfg, tmp_path)
    cfg.write_text('state_dir = "s"\n')
    with pytest.raises(FeedConfigError, match="no \\[\\[source\\]\\]"):
        load_config(cfg, tmp_path)


def test_with_params_keeps_the_query_and_appends_crossref_filters():
    url = with_params(
        "http://h/works?filter=type:journal-article&mailto=a@b", rows="2", filter="from-index-date:2026-11-01"
    )
    assert url == "http://h/works?filter=type:journal-article,from-index-date:2026-11-01&mailto=a%40b&rows=2"


# -- the ingester against the loopback server, with an in-memory publisher --------------------------


class Recorder:
    def __init__(self) -> None:
        self.papers, self.dead = [], []

    async def submit(self, record) -> None:
        self.papers.append(record)

    async def dead_letter(self, record) -> None:
        self.dead.append(record)


def ingest_once(config_path, tmp_path) -> tuple[Recorder, dict]:
    import aiohttp

    config = load_config(config_path, tmp_path)
    state = FeedState(config.state_dir / "feeds.sqlite")
    recorder = Recorder()

    async def main() -> dict:
        async with aiohttp.ClientSession() as session:
            ingester = FeedIngester(config, state, recorder, session)
            return {s.name: await ingester.poll(s) for s in config.sources}

    try:
        return recorder, asyncio.run(main())
    finally:
        state.close()


def test_ingester_pages_deduplicates_and_resumes_across_restarts(tmp_path, feeds):
    inbox = tmp_path / "inbox"
    fill_inbox(inbox)
    config = write_config(tmp_path, feeds, inbox)

    first, stats = ingest_once(config, tmp_path)
    new = {name: s.new for name, s in stats.items()}
    assert new == {
        "arxiv": 3,
        "journal-rss": 0,
        "journal-ru": 1,
        "repository": 0,
        "crossref": 1,
        "inbox": 1,
        "broken": 0,
        "flaky": 0,
    }
    assert stats["arxiv"].pages == 2 and stats["repository"].pages == 2 and stats["crossref"].pages == 3
    assert stats["journal-rss"].duplicates == 1 and stats["crossref"].duplicates == 2
    assert stats["repository"].duplicates == 2 and stats["inbox"].duplicates == 1
    assert [d.error_kind for d in first.dead] == ["no_pdf_link", "malformed_sidecar"]
    assert stats["broken"].errors[0].startswith("malformed_feed")
    assert stats["flaky"].errors[0].startswith("http_5xx")
    assert sum(1 for p, _, _ in feeds.requests if p == "/flaky") == 3  # two retries, then given up
    ids = [p.paper_id for p in first.papers] + [d.paper_id for d in first.dead]
    assert len(ids) == len(set(ids)) == 8
    by_doi = {p.doi: p for p in first.papers}
    assert by_doi["10.5555/tests.2"].paper_id == paper_id_for(doi="10.5555/tests.2")
    assert by_doi["10.5555/tests.6"].language == "ru" and by_doi["10.5555/tests.6"].journal == "Вестник испытаний"
    assert by_doi["10.5555/tests.2"].categories[0] == "cond-mat.mtrl-sci"
    assert all(p.source_feed in {"arxiv", "journal-ru", "crossref", "inbox"} for p in first.papers)

    # restart: nothing new; conditional GETs answer 304, OAI-PMH and Crossref ask only for what is newer
    feeds.requests.clear()
    second, stats = ingest_once(config, tmp_path)
    assert not second.papers and not second.dead
    assert stats["journal-rss"].not_modified and stats["journal-ru"].not_modified
    assert stats["arxiv"].pages == 1  # a page with nothing new: caught up
    rss_request = next(h for p, _, h in feeds.requests if p == "/journal/rss2.xml")
    assert rss_request["If-None-Match"] == '"toc-v1"'
    oai_request = next(q for p, q, _ in feeds.requests if p == "/oai")
    assert oai_request["from"] == ["2026-11-21"] and not stats["repository"].errors
    crossref_request = next(q for p, q, _ in feeds.requests if p == "/crossref/works")
    assert "from-index-date:" in crossref_request["filter"][0] and crossref_request["cursor"] == ["*"]

    # a second restart after the journal published one more paper: exactly that one
    feeds.rss2_version = 2
    feeds.rss2_items.append({"doi": "10.5555/tests.9", "title": "Paper E", "pdf": feeds.pdf(SCAN)})
    third, stats = ingest_once(config, tmp_path)
    assert [p.doi for p in third.papers] == ["10.5555/tests.9"] and not third.dead


def test_fetch_refuses_a_redirect_to_a_private_address(feeds):
    async def get():
        return await http_get(
            feeds.url("/redirect-to-metadata"), allowed_hosts={"127.0.0.1"}, timeout_s=5, max_bytes=1000
        )

    with pytest.raises(SourceError) as info:
        asyncio.run(get())
    assert info.value.kind == "host_not_allowed"

    async def not_allowed():
        return await http_get(feeds.url("/journal/rss2.xml"), allowed_hosts=set(), timeout_s=5, max_bytes=1000)

    with pytest.raises(SourceError, match="SCIQAG_ALLOWED_HOSTS"):
        asyncio.run(not_allowed())


# -- `sciqag feed` into a real broker, then the pipeline ------------------------------------------------


async def _read_topic(bootstrap: str, topic: str, timeout: float = 20) -> list:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"test-{topic}-{time.time()}",
        enable_auto_commit=False,
    )
    await consumer.start()
    messages, quiet_since = [], time.monotonic()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 4:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                messages += part
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return messages


@pytest.mark.slow
def test_feed_cli_publishes_each_paper_once_across_restarts_and_the_pipeline_scores_them(
    tmp_path, feeds, free_port, vllm_server
):
    from processors.ingest.publish import bootstrap_servers
    from processors.local.broker import tansu_broker
    from schemas import DeadLetter, PaperSubmitted, decode
    from schemas import topics as T

    inbox = tmp_path / "inbox"
    fill_inbox(inbox)
    config = write_config(tmp_path, feeds, inbox)
    data = tmp_path / "data"

    def feed_once() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sciqag_exe(), "feed", "--once", "--config", str(config), "--broker", broker, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    with tansu_broker() as broker:
        runs = [feed_once(), feed_once()]
        feeds.rss2_version = 2
        feeds.rss2_items.append({"doi": "10.5555/tests.9", "title": "Paper E", "pdf": feeds.pdf(SCAN)})
        runs.append(feed_once())
        for run in runs:  # the broken and the flaky source fail every time; the others go on
            assert run.returncode == 1, run.stderr[-3000:]
            assert "malformed_feed" in run.stdout and "http_5xx" in run.stdout
        news = [sum(int(line.split()[4]) for line in run.stdout.splitlines()[1:]) for run in runs]
        assert news == [6, 0, 1], [r.stdout for r in runs]
        assert "not modified" in runs[1].stdout

        # the long-running mode: it keeps polling every source on its interval and stops cleanly on SIGTERM
        from processors.local.broker import free_port as another_port

        feed_port = another_port()
        ingester = subprocess.Popen(
            [
                sciqag_exe(),
                "feed",
                "--config",
                str(config),
                "--broker",
                broker,
                "--data-dir",
                str(data),
                "--metrics-port",
                str(feed_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            polls, deadline = 0.0, time.monotonic() + 60
            while polls < 3 and time.monotonic() < deadline and ingester.poll() is None:
                time.sleep(0.5)
                try:
                    polls = metric(scrape_metrics(feed_port), "sciqag_feed_polls_total", source="journal-rss")
                except OSError:
                    pass
            samples = scrape_metrics(feed_port)
        finally:
            ingester.send_signal(signal.SIGTERM)
            output, _ = ingester.communicate(timeout=60)
        assert ingester.returncode == 0, output[-3000:]
        assert polls >= 3
        assert metric(samples, "sciqag_feed_polls_total", source="journal-rss", outcome="not_modified") >= 3
        assert metric(samples, "sciqag_feed_papers_total", result="new") == 0
        assert metric(samples, "sciqag_feed_errors_total", source="broken", kind="malformed_feed") >= 1
        assert metric(samples, "sciqag_feed_last_success_timestamp_seconds", source="arxiv") > 0

        bootstrap = bootstrap_servers(broker)
        papers = [decode(m.value, PaperSubmitted) for m in asyncio.run(_read_topic(bootstrap, T.PAPERS))]
        dead = [decode(m.value, DeadLetter) for m in asyncio.run(_read_topic(bootstrap, T.DLQ))]
        ids = [p.paper_id for p in papers] + [d.paper_id for d in dead]
        assert len(papers) == 7 and len(dead) == 2 and len(set(ids)) == 9, ids  # each exactly once

        env = {**os.environ, **FAST_ENV, "SCIQAG_ALLOWED_HOSTS": "127.0.0.1", "SCIQAG_FILE_ROOTS": str(inbox)}
        # the smallest LLM work that still scores a paper: this test is about the feeds (CI time)
        worker = subprocess.Popen(
            [
                sciqag_exe(),
                "worker",
                "--broker",
                broker,
                "--data-dir",
                str(data),
                "--metrics-port",
                str(free_port),
                "--pairs",
                "1",
                "--keywords",
                "3",
                "--mcq",
                "0",
                "--max-context-tokens",
                "600",
                "--max-model-len",
                "4096",
                "--llm-url",
                f"{vllm_server}/v1",
                "--model",
                "sciqag-llm",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            deadline, decided = time.monotonic() + 900, 0
            while time.monotonic() < deadline and worker.poll() is None:
                try:
                    samples = scrape_metrics(free_port)
                    decided = metric(samples, "sciqag_papers_total", stage="sink", outcome="scored") + metric(
                        samples, "sciqag_papers_total", stage="sink", outcome="failed"
                    )
                except OSError:
                    pass  # not up yet
                if decided >= 9:
                    break
                time.sleep(2)
            assert decided == 9, f"papers decided: {decided}"
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                output, _ = worker.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                worker.kill()
                output, _ = worker.communicate()
        assert worker.returncode == 0, output[-3000:]

    store = open_store(data)
    try:
        status = {r["paper_id"]: r for r in store.papers()}
        qa = store.qa_rows()
    finally:
        store.close()
    assert set(status) == set(ids)
    scored = {pid for pid, r in status.items() if r["status"] == "scored"}
    by_uri = {p.pdf_uri.rsplit("/", 1)[-1]: p.paper_id for p in papers if p.source_feed == "arxiv"}
    assert scored == {by_uri[fs.SMALL_A], by_uri[fs.SMALL_B]}
    assert {r["paper_id"] for r in qa} == scored and all(1 <= r[d] <= 3 for r in qa for d in RACAR_DIMENSIONS)
    failures = sorted((r["stage"], r["error_kind"]) for pid, r in status.items() if pid not in scored)
    assert failures == [
        ("extractor", "http_error"),
        *[("extractor", "image_only_pdf")] * 4,
        ("feed", "malformed_sidecar"),
        ("feed", "no_pdf_link"),
    ]


def test_the_example_config_loads_and_the_compose_service_runs_the_feed_command():
    from .conftest import ROOT

    config = load_config(ROOT / "deploy" / "feeds" / "feeds.example.toml", ROOT)
    assert [s.kind for s in config.sources] == ["arxiv", "rss", "oai-pmh", "crossref", "inbox"]
    assert config.sources[0].min_request_interval_s == 3
    compose = (ROOT / "docker-compose.yml").read_text()
    assert '["feed", "--config", "/etc/sciqag/feeds.toml"' in compose
