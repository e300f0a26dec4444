"""`sciqag review` (issue 23): the verdict rule and the highlighting as functions; then the app as a real uvicorn server
(`sciqag review` in a subprocess) over what a real `sciqag run` of the pipeline stored: the bundled sample papers, a
real PDF of ../shared/data and a hostile paper written here (all PDFs, through the extractor), the instant LLM
stand-in (tests/llm_standin.py) as generator and judge behind the HTTP backend, the real grounding (the stand-in's
answers quote sentences of the paper, located in the extractor's text), the sink's near-duplicate check, and
ClickHouse behind its HTTP interface. Nothing is written into the store by the test. A real headless Chromium
(Debian's, through playwright) filters the list, opens a pair, sees the evidence the pipeline located highlighted,
rejects, accepts and edits with the keyboard; the verdicts are in ClickHouse and `dataset build`, `export` and
`stats` follow them. Then the security rules over HTTP; the hostile paper's `<script>` and HTML answer render inert."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from processors.review.text import evidence_of, pieces
from sciqag.verdicts import apply_verdicts, judge_agreement, rejected_by_reviewers

from .conftest import PDFS, sciqag_exe

REAL_PDF = PDFS / "grobid__1001._0908.0054.pdf"  # arXiv:0908.0054, 4 pages of text
CHROMIUM = "/usr/bin/chromium"
SCREENS = Path("/tmp/review-screens")
SCRIPT = "<script>window.__pwned = 1</script>"
HTML = '<b>bold</b> and <img src="x" id="injected" onerror="alert(2)">'  # no full stop: one sentence for the stand-in
TOKEN = "s3cret-review-token-0123456789"
# A paper as a hostile PDF could carry it, rendered to PDF like the bundled samples (the markup is drawn as text: the
# extractor reads back the characters `<script>...`). The stand-in's generator answers pair i with the paper's i-th
# sentence (its sentences run from one full stop to the next), so the first pair's answer (title, heading and first
# sentence) carries the HTML; the script comes after the first PAIRS sentences, the only ones the stand-in quotes, so
# no answer or evidence span cuts through it. The title's second long word is the perovskite sample's too
# ("stability"): the stand-in asks its second question about it for both papers, and the sink's near-duplicate check
# marks one of the two.
HOSTILE_PAPER = f"""# Thermal stability of a layered oxide cathode studied by in situ diffraction

## Abstract
It is {HTML}. The layered oxide kept its structure up to 250 °C in air, and its capacity fell by 4% after 200 cycles
at 1C.

## Introduction
Layered oxides are the most common cathodes of lithium-ion cells, and their thermal stability limits the safe
operating range of the cell. Diffraction during heating shows when the layered structure turns into a spinel or a
rock-salt phase, and at which temperature oxygen leaves the lattice.

## Methods
Powder diffraction patterns were recorded every 10 °C from 25 °C to 400 °C under flowing synthetic air.
{SCRIPT}
The phase fractions were refined by the Rietveld method.
"""
PAIRS = 4
RUN_ARGS = ["--pairs", str(PAIRS), "--keywords", "5", "--mcq", "0", "--max-context-tokens", "1200"]


# -- the rules, as functions -------------------------------------------------------------------------------------


def _row(qa_id: str, accepted: bool, question: str = "Q?", answer: str = "A.") -> dict:
    return {"qa_id": qa_id, "paper_id": "p", "accepted": accepted, "question": question, "answer": answer}


def test_the_latest_verdict_wins_over_the_judge():
    rows = [_row("a", True), _row("b", False), _row("c", False), _row("d", True)]
    t = datetime(2026, 1, 1, tzinfo=UTC)
    verdicts = {
        "a": {"verdict": "reject", "reviewer": "ann", "reason": "wrong", "decided_at": t},
        "b": {"verdict": "accept", "reviewer": "bob", "reason": "", "decided_at": t},
        "c": {"verdict": "edit", "reviewer": "ann", "edited_question": "Q2?", "edited_answer": "A2.", "decided_at": t},
    }
    merged = {r["qa_id"]: r for r in apply_verdicts(rows, verdicts)}
    assert set(merged) == {"b", "c", "d"} and rejected_by_reviewers(rows, verdicts) == 1
    assert merged["b"]["accepted"] and not merged["b"]["judge_accepted"] and merged["b"]["review"]["reviewer"] == "bob"
    c = merged["c"]
    assert c["accepted"] and c["edited"] and (c["question"], c["answer"]) == ("Q2?", "A2.")
    assert (c["generated_question"], c["generated_answer"]) == ("Q?", "A.")
    assert merged["d"]["review"] is None and merged["d"]["accepted"] and not merged["d"]["edited"]
    agreement = judge_agreement(rows, verdicts)  # a: judge yes / human no; b, c: judge no / human yes
    assert (agreement.pairs, agreement.agreed, agreement.judge_only, agreement.reviewer_only) == (3, 0, 1, 2)


def test_judge_agreement_kappa_is_cohens():
    from sklearn.metrics import cohen_kappa_score

    judge = [True, True, False, False, True, False, True, True]
    human = ["accept", "reject", "reject", "reject", "edit", "accept", "accept", "accept"]
    rows = [_row(str(i), j) for i, j in enumerate(judge)]
    verdicts = {str(i): {"verdict": v, "reviewer": "x"} for i, v in enumerate(human)}
    a = judge_agreement(rows, verdicts)
    expected = cohen_kappa_score([int(j) for j in judge], [int(v != "reject") for v in human])
    assert a.pairs == 8 and a.agreed == 6 and a.kappa == pytest.approx(expected)


def test_pieces_mark_overlapping_spans_and_sections():
    text = "Intro text. Methods: we heated it to 300 K. Results: it melted."
    sections = [{"title": "Intro", "start": 0, "end": 12}, {"title": "Methods", "start": 12, "end": len(text)}]
    m = text.index("heated")
    evidence = evidence_of(
        [
            ("heated it to 300 K", m, m + 18, 1.0, True),
            ("to 300 K. Results", m + 10, m + 27, 0.95, True),
            ("not in the paper", -1, -1, 0.3, False),
        ]
    )
    out = pieces(text, evidence, sections)
    assert "".join(p.text for p in out) == text
    assert [e.section for e in evidence] == ["Methods", "Methods", ""] and [e.shown for e in evidence] == [
        True,
        True,
        False,
    ]
    covered = {n: "".join(p.text for p in out if n in p.marks) for n in (1, 2)}
    assert covered == {1: "heated it to 300 K", 2: "to 300 K. Results"}
    assert [p.section for p in out if p.section] == ["Intro", "Methods"]
    assert any(p.marks == [1, 2] for p in out)  # the overlap


# -- a real server over a real pipeline run -------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIQAG_") or k == "SCIQAG_CACHE_DIR"}
    return {**env, **extra}


def _in_one_titled_section(row: dict, sections: list[dict]) -> str:
    """The title of the section that holds the pair's one located evidence span strictly inside it ('' if none)."""
    if len(row["evidence"]) != 1 or not row["evidence"][0]["located"]:
        return ""
    e = row["evidence"][0]
    for s in sections:
        if s["title"] and s["start"] < e["start"] and e["end"] <= s["end"]:
            return s["title"]
    return ""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """`sciqag run` over the bundled sample papers, a real PDF and the hostile paper (module docstring), with the LLM
    stand-in, the real broker, sink and ClickHouse over HTTP; then the pairs the tests review, chosen from what it
    stored: `a` (judge-accepted, its evidence located inside one section), `b` (judge-rejected), `d` (to edit), `c`
    (of the hostile paper, for the security test) and `h` (the one whose answer carries the HTML)."""
    from processors.local.broker import free_port, stop_process
    from processors.local.samples import render_pdf, write_sample_pdfs
    from processors.settings import Settings
    from processors.store import PairFilter, Store

    from .clickhouse_http import start_clickhouse_http
    from .e2e import FAST_ENV
    from .llm_standin import MODEL, start_llm_standin

    base = tmp_path_factory.mktemp("review")
    inbox = base / "inbox"
    pdfs = write_sample_pdfs(inbox)
    render_pdf(HOSTILE_PAPER, inbox / "hostile.pdf")
    pdfs.append(inbox / "hostile.pdf")
    if REAL_PDF.exists():  # by reference: ../shared/data is beside the project in CI and developer checkouts
        pdfs.append(REAL_PDF)
    ch_port, llm_port = free_port(), free_port()
    clickhouse = start_clickhouse_http(base / "clickhouse", ch_port, base / "clickhouse.log")
    llm = None
    dsn = f"http://default@127.0.0.1:{ch_port}/?compress=false"
    data = base / "data"
    summary_file = base / "summary.json"
    try:
        llm = start_llm_standin(llm_port, base / "llm.log")
        out = subprocess.run(
            [sciqag_exe(), "run", *map(str, pdfs), "--data-dir", str(data), "--metrics-port", str(free_port())]
            + ["--summary-json", str(summary_file), "--timeout", "400", *RUN_ARGS]
            + ["--llm-url", f"http://127.0.0.1:{llm_port}/v1", "--model", MODEL],
            env=_env(**FAST_ENV, SCIQAG_CLICKHOUSE_DSN=dsn, PYTHONUNBUFFERED="1"),
            capture_output=True,
            text=True,
            timeout=500,
        )
        assert out.returncode == 0, out.stdout + out.stderr[-4000:]
        summary = json.loads(summary_file.read_text())
        by_file = {Path(p["file"]).name: p for p in summary["papers"].values()}
        assert {name: p["status"] for name, p in by_file.items()} == {p.name: "scored" for p in pdfs}, out.stdout
        store = Store(Settings(data_dir=data, clickhouse_dsn=dsn))
        try:
            rows = store.qa_rows()
            texts = store.paper_texts({r["paper_id"] for r in rows})
            in_list = [r["qa_id"] for r in store.review_pairs(PairFilter(), sort="paper", limit=1000)]
        finally:
            store.close()
        assert len(rows) == summary["qa_pairs"] and sorted(in_list) == sorted(r["qa_id"] for r in rows)
        assert {r["paper_id"] for r in rows} == {p["paper_id"] for p in by_file.values()}  # every paper has pairs
        hostile = by_file["hostile.pdf"]["paper_id"]
        assert SCRIPT in texts[hostile]["text"] and HTML in texts[hostile]["text"]  # as the extractor read them
        duplicates = [r for r in rows if r["duplicate_of"]]
        assert duplicates, "the near-duplicate check marked none of the pairs: see HOSTILE_PAPER"
        (h,) = [r for r in rows if HTML in r["answer"]]

        # the pairs a test looks up by their question (the list's text filter): a question no other pair has in its
        # question or answer, and not a near-duplicate (those are left out of `dataset build`)
        def findable(r: dict) -> bool:
            q = r["question"].lower()
            others = [o for o in rows if o["qa_id"] != r["qa_id"]]
            return not r["duplicate_of"] and not any(
                q in o["question"].lower() or q in o["answer"].lower() for o in others
            )

        candidates = [r for r in rows if findable(r)]
        # a: opened from the list in paper order, then the keyboard goes on to the next two pairs of the list
        last_two = set(in_list[-2:])
        a = next(
            r
            for r in candidates
            if r["accepted"]
            and r["paper_id"] != hostile
            and r["qa_id"] not in last_two
            and _in_one_titled_section(r, texts[r["paper_id"]]["sections"])
        )
        b = next(r for r in candidates if not r["accepted"] and r["qa_id"] != a["qa_id"])
        d = next(r for r in candidates if r["qa_id"] not in {a["qa_id"], b["qa_id"]})
        c = next(r for r in rows if r["paper_id"] == hostile and r["qa_id"] not in {a["qa_id"], b["qa_id"], d["qa_id"]})
        evidence = a["evidence"][0]
        a_text = texts[a["paper_id"]]
        yield {
            "dsn": dsn,
            "data": data,
            "base": base,
            "rows": rows,
            "a": a,
            "b": b,
            "c": c,
            "d": d,
            "h": h,
            "span": a_text["text"][evidence["start"] : evidence["end"]],
            "section": _in_one_titled_section(a, a_text["sections"]),
        }
    finally:
        if llm is not None:
            stop_process(llm, 10)
        stop_process(clickhouse, 10)


def _start_review(stored, port: int, *args: str, env: dict | None = None, log: Path | None = None):
    log = log or stored["base"] / f"review-{port}.log"
    proc = subprocess.Popen(
        [sciqag_exe(), "review", "--port", str(port), "--data-dir", str(stored["data"]), *args],
        env=env or _env(SCIQAG_CLICKHOUSE_DSN=stored["dsn"]),
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/review.css", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("sciqag review did not come up:\n" + log.read_text())


def _run(stored, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sciqag_exe(), *args, "--data-dir", str(stored["data"])],
        env=_env(SCIQAG_CLICKHOUSE_DSN=stored["dsn"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("review")  # one worker builds the module's data set once (make test runs --dist loadgroup)
def test_review_in_a_browser_then_the_readers_follow_the_verdicts(stored, tmp_path, free_port):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make tools)")
    from playwright.sync_api import expect, sync_playwright

    from processors.settings import Settings
    from processors.store import Store

    rows, a, b, d, h = stored["rows"], stored["a"], stored["b"], stored["d"], stored["h"]
    server = _start_review(stored, free_port)
    url = f"http://127.0.0.1:{free_port}"
    dialogs = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda dlg: (dialogs.append(dlg.message), dlg.dismiss()))
            page.goto(url + "/")
            expect(page.locator("#count-pairs")).to_have_text(str(len(rows)))
            page.screenshot(path=str(tmp_path / "list.png"), full_page=True)
            # filters: what the judge rejected, then one language, then the near-duplicates, as the store has them
            page.select_option("select[name=accepted]", "no")
            page.click("#apply")
            expect(page.locator("#count-pairs")).to_have_text(str(sum(not r["accepted"] for r in rows)))
            expect(page.get_by_role("link", name=b["question"], exact=True)).to_have_count(1)
            expect(page.get_by_role("link", name=a["question"], exact=True)).to_have_count(0)
            page.select_option("select[name=accepted]", "")
            page.select_option("select[name=language]", "ru")
            page.click("#apply")
            ru = sum(r["language"] == "ru" for r in rows)
            assert ru, "the Russian sample paper has no pairs"
            expect(page.locator("#count-pairs")).to_have_text(str(ru))
            page.select_option("select[name=language]", "")
            page.select_option("select[name=duplicate]", "yes")
            page.click("#apply")
            expect(page.locator("#count-pairs")).to_have_text(str(sum(bool(r["duplicate_of"]) for r in rows)))
            # the list in paper order: open a pair whose evidence the pipeline located; its span is highlighted
            page.goto(url + "/?sort=paper")
            page.get_by_role("link", name=a["question"], exact=True).click()
            expect(page.locator("#question")).to_have_text(a["question"])
            mark = page.locator("mark.evidence-span")
            expect(mark).to_have_count(1)
            expect(mark).to_have_text(stored["span"])  # the stored span of the stored paper text
            assert " ".join(mark.inner_text().split()) == " ".join(stored["span"].split())
            expect(page.locator("#evidence .section-name")).to_have_text(stored["section"])
            mark.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "pair-highlight.png"), full_page=False)
            # the reviewer's name once (remembered in localStorage); then keys only
            page.fill("#reviewer", "Ada Reviewer")
            page.locator("#question").click()  # out of the input: keys are shortcuts again
            page.keyboard.press("2")  # the second reason of the list
            page.keyboard.press("r")
            page.wait_for_url(re.compile(r"saved=reject"))  # and on to the next pair of the list
            expect(page.locator("#question")).not_to_have_text(a["question"])
            before = page.url
            page.keyboard.press("n")
            page.wait_for_url(lambda u: u != before and "pos=" in u)
            # the hostile paper's pair with HTML in its answer: the answer and the paper's script are text
            page.goto(url + f"/pair/{h['qa_id']}")
            expect(page.locator("#answer")).to_have_text(h["answer"])
            expect(page.locator("#answer")).to_contain_text(HTML)
            page.wait_for_load_state()
            expect(page.locator("#answer b")).to_have_count(0)
            expect(page.locator("#injected")).to_have_count(0)
            expect(page.locator("#paper-text")).to_contain_text(SCRIPT)
            page.screenshot(path=str(tmp_path / "hostile-pair.png"), full_page=True)
            # a pair the judge rejected, found by its question and accepted with the keyboard
            page.goto(url + "/?" + str(httpx.QueryParams({"q": b["question"]})))
            expect(page.locator("#count-pairs")).to_have_text("1")
            page.click("a.pair-link")
            expect(page.locator("#answer")).to_have_text(b["answer"])
            page.wait_for_load_state()
            expect(page.locator("#reviewer")).to_have_value("Ada Reviewer")  # remembered
            page.keyboard.press("a")
            page.wait_for_url(re.compile(r"saved=accept"))
            # an edit
            page.goto(url + "/?" + str(httpx.QueryParams({"q": d["question"]})))
            page.click("a.pair-link")
            expect(page.locator("#question")).to_have_text(d["question"])
            page.wait_for_load_state()  # the script's key handler is in place
            page.keyboard.press("e")
            page.fill("#edit-question", "What is the edited question?")
            page.fill("#edit-answer", "The edited answer, written by a person.")
            page.click("#save-edit")
            page.wait_for_url(re.compile(r"saved=edit"))
            page.goto(url + "/?verdict=reject")
            expect(page.locator("#count-pairs")).to_have_text("1")
            page.goto(url + "/?verdict=reviewed&sort=reviewed&dir=desc")
            page.screenshot(path=str(tmp_path / "reviewed.png"), full_page=True)
            assert page.evaluate("window.__pwned") is None and not dialogs
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    SCREENS.mkdir(parents=True, exist_ok=True)
    for name in ("list.png", "pair-highlight.png", "hostile-pair.png", "reviewed.png"):
        shutil.copy(tmp_path / name, SCREENS / name)

    store = Store(Settings(data_dir=stored["data"], clickhouse_dsn=stored["dsn"]))
    try:
        verdicts = store.latest_verdicts()
        history = store.verdict_history(a["qa_id"])
    finally:
        store.close()
    # (the security test may have added one verdict on c: the tests do not depend on their order)
    assert {k: (v["verdict"], v["reviewer"]) for k, v in verdicts.items() if k != stored["c"]["qa_id"]} == {
        a["qa_id"]: ("reject", "Ada Reviewer"),
        b["qa_id"]: ("accept", "Ada Reviewer"),
        d["qa_id"]: ("edit", "Ada Reviewer"),
    }
    assert verdicts[a["qa_id"]]["reason"] == "not-self-contained" and len(history) == 1
    assert verdicts[d["qa_id"]]["edited_question"] == "What is the edited question?"

    # dataset build: all the papers are of one category (no journal), 10 a category takes every paper with a pair
    # passing the policy, or a reviewer accepted, into the test split, with those pairs only: the rejected pair is
    # out, the one the judge rejected is in (its paper too), the edited one has the reviewer's text
    out = tmp_path / "dataset"
    built = _run(stored, "dataset", "build", "--per-category", "10", "--out", str(out))
    assert "1 pairs rejected by reviewers left out" in built.stderr
    test = [json.loads(line) for line in (out / "test" / "qa.jsonl").read_text().splitlines()]
    by_question = {r["question"]: r for r in test}
    assert a["question"] not in by_question
    assert by_question[b["question"]]["reviewed_by"] == "Ada Reviewer"  # in despite the judge
    edited = by_question["What is the edited question?"]
    assert edited["edited"] is True and edited["answer"] == "The edited answer, written by a person."
    assert d["question"] not in by_question
    assert "1 pairs a reviewer rejected were left out" in (out / "README.md").read_text()

    exported = [json.loads(line) for line in _run(stored, "export").stdout.splitlines()]
    by_id = {r["qa_id"]: r for r in exported}
    assert a["qa_id"] not in by_id
    assert by_id[b["qa_id"]]["accepted"] is True and by_id[b["qa_id"]]["judge_accepted"] is False
    assert by_id[d["qa_id"]]["edited"] is True and by_id[d["qa_id"]]["generated_question"] == d["question"]
    stats = _run(stored, "stats", "--html", str(tmp_path / "stats.html")).stdout
    # judge and reviewer agree on a pair the judge accepted and the reviewer accepted or edited, or the judge rejected
    # and the reviewer rejected (a: judge yes, reviewer no; b: judge no, reviewer yes; d, and c if reviewed: either)
    judge = {r["qa_id"]: r["accepted"] for r in rows}
    agreed = sum(judge[k] == (v["verdict"] != "reject") for k, v in verdicts.items())
    assert f"{len(verdicts)} reviewed pairs, acceptance agreed on {agreed} ({agreed / len(verdicts):.1%})" in stats


@pytest.mark.slow
@pytest.mark.xdist_group("review")
def test_review_refuses_what_it_must(stored, free_port):
    from processors.settings import Settings
    from processors.store import Store

    # another bind than the loopback without a token: it does not start
    out = subprocess.run(
        [sciqag_exe(), "review", "--host", "0.0.0.0", "--port", str(free_port), "--data-dir", str(stored["data"])],
        env=_env(SCIQAG_CLICKHOUSE_DSN=stored["dsn"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "SCIQAG_REVIEW_TOKEN" in out.stderr

    token_file = stored["base"] / "token"
    token_file.write_text(TOKEN + "\n")
    log = stored["base"] / "review-token.log"
    env = _env(SCIQAG_CLICKHOUSE_DSN=stored["dsn"], SCIQAG_REVIEW_TOKEN_FILE=str(token_file))
    server = _start_review(stored, free_port, "--host", "0.0.0.0", "--log-level", "INFO", env=env, log=log)
    url = f"http://127.0.0.1:{free_port}"
    c = stored["c"]
    try:
        assert httpx.get(url + "/").status_code == 401
        assert httpx.get(url + f"/pair/{c['qa_id']}").status_code == 401
        assert httpx.get(url + "/?token=wrong").status_code == 401
        assert httpx.get(url + "/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        login = httpx.get(url + f"/pair/{c['qa_id']}?token={TOKEN}&pos=0")
        assert login.status_code == 303 and TOKEN not in login.headers["location"]
        assert login.headers["location"] == f"/pair/{c['qa_id']}?pos=0"
        with httpx.Client(base_url=url) as client:
            client.cookies.update(login.cookies)
            page = client.get(f"/pair/{c['qa_id']}")
            assert page.status_code == 200
            assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
            assert SCRIPT not in page.text and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            form = {"csrf": csrf, "verdict": "accept", "reviewer": "mallory"}
            post = f"/pair/{c['qa_id']}/verdict"
            assert client.post(post, data=form, headers={"Origin": "http://evil.example"}).status_code == 403
            assert client.post(post, data=form).status_code == 403  # neither Origin nor Referer
            assert client.post(post, data={**form, "csrf": "forged"}, headers={"Origin": url}).status_code == 403
            assert client.get(post).status_code == 405  # a verdict is never a GET
            ok = client.post(post, data={**form, "reviewer": "eve"}, headers={"Origin": url})
            assert ok.status_code == 303
        # and a page of another site posting with the browser's cookie is refused too: the cookie is SameSite=Strict
        assert "samesite=strict" in login.headers["set-cookie"].lower()
    finally:
        server.terminate()
        server.wait(10)
    logged = log.read_text()
    assert "GET /pair/" in logged and TOKEN not in logged  # the access log ran, the token was redacted
    store = Store(Settings(data_dir=stored["data"], clickhouse_dsn=stored["dsn"]))
    try:
        history = store.verdict_history(c["qa_id"])
    finally:
        store.close()
    assert "mallory" not in {v["reviewer"] for v in history} and "eve" in {v["reviewer"] for v in history}
