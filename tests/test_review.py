"""`sciqag review` (issue 23): the verdict rule and the highlighting as functions; then the app as a real uvicorn server
(`sciqag review` in a subprocess) over pairs a real pipeline run stored (`dataset import-sciqag`: the broker, the
sink, ClickHouse behind its HTTP interface), driven by a real headless Chromium (Debian's, through playwright): filter,
open a pair, see the evidence highlighted, accept, reject and edit with the keyboard; the verdicts are in ClickHouse
and `dataset build`, `export` and `stats` follow them. Then the security rules over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from processors.review.text import evidence_of, pieces
from sciqag.verdicts import apply_verdicts, judge_agreement, rejected_by_reviewers

from .conftest import SHARED, sciqag_exe

RELEASE = SHARED / "sciqag" / "papers_dev.jsonl"
CHROMIUM = "/usr/bin/chromium"
SCREENS = Path("/tmp/review-screens")
SCRIPT = "<script>window.__pwned = 1</script>"
HTML_ANSWER = 'It is <b>bold</b> and <img src="x" id="injected" onerror="window.__pwned = 2">.'
TOKEN = "s3cret-review-token-0123456789"


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


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Three release papers stored by `dataset import-sciqag` (real broker, sink, ClickHouse over HTTP), then, through
    the Store: one paper's extracted text (with a `<script>` in it) and sections, evidence for one pair, an answer
    with HTML in a pair the judge rejected, and a near-duplicate mark."""
    if not RELEASE.exists():
        pytest.skip(f"{RELEASE} is not here")
    from processors.jobs.release_import import read_release
    from processors.local.broker import free_port, stop_process
    from processors.settings import Settings
    from processors.store import Store, now

    from .clickhouse_http import start_clickhouse_http

    base = tmp_path_factory.mktemp("review")
    port = free_port()
    clickhouse = start_clickhouse_http(base / "clickhouse", port, base / "clickhouse.log")
    dsn = f"http://default@127.0.0.1:{port}/?compress=false"
    data = base / "data"
    try:
        out = subprocess.run(
            [sciqag_exe(), "dataset", "import-sciqag", str(RELEASE), "--assume-score", "3", "--limit", "3"]
            + ["--data-dir", str(data)],
            env=_env(SCIQAG_CLICKHOUSE_DSN=dsn),
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "imported 3 papers, 30 pairs" in out.stdout + out.stderr
        store = Store(Settings(data_dir=data, clickhouse_dsn=dsn))
        rows = store.qa_rows()
        assert len(rows) == 30
        papers = read_release(RELEASE, limit=3)
        by_paper = {}
        for r in rows:
            by_paper.setdefault(r["paper_id"], []).append(r)
        first = papers[0]
        from sciqag.prefilter import drop_reason

        # four pairs of the first paper the rule-based filter keeps (so `dataset build` offers them all)
        kept = [r for r in by_paper[first.ref.paper_id] if drop_reason(r["question"], HTML_ANSWER, set()) is None]
        a, b, c, d = sorted(kept, key=lambda r: r["pair_index"])[:4]
        # the paper's text as the extractor would store it, with a script a hostile PDF could carry
        head = f"Introduction\n{SCRIPT}\n"
        text = head + first.text
        sentence = re.search(r"[A-Z][^.]{40,160}\.", first.text)
        quote, start = sentence.group(0), len(head) + sentence.start()
        cut = len(head) + len(first.text) // 2
        store.insert_paper_texts(
            [
                {
                    "paper_id": first.ref.paper_id,
                    "text": text,
                    "sections": [
                        {"title": "Introduction", "start": 0, "end": len(head)},
                        {"title": "Body of the paper", "start": len(head), "end": cut},
                        {"title": "Second half", "start": cut, "end": len(text)},
                    ],
                    "language": "en",
                    "extracted_at": now(),
                    "updated_at": now(),
                }
            ]
        )
        later = now() + timedelta(seconds=1)
        a_row = {**a, "evidence": [(quote, start, start + len(quote), 1.0, True)], "grounding": 0.5}
        b_row = {**b, "answer": HTML_ANSWER, "accepted": False, "accuracy": 1}
        store.insert_qa([{**r, "inserted_at": later} for r in (a_row, b_row)])
        store.mark_duplicates({(c["paper_id"], c["qa_id"]): (d["qa_id"], 0.97)})
        store.close()
        yield {
            "dsn": dsn,
            "data": data,
            "base": base,
            "a": a_row,
            "b": b_row,
            "c": c,
            "d": d,
            "quote": quote,
            "papers": [p.ref.paper_id for p in papers],
        }
    finally:
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

    a, b, d = stored["a"], stored["b"], stored["d"]
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
            expect(page.locator("#count-pairs")).to_have_text("30")
            page.screenshot(path=str(tmp_path / "list.png"), full_page=True)
            # filter: the pairs the judge rejected (the one with HTML in its answer); its answer shows as text
            page.select_option("select[name=accepted]", "no")
            page.click("#apply")
            expect(page.locator("#count-pairs")).to_have_text("1")
            expect(page.locator("a.pair-link")).to_have_text(b["question"])
            page.select_option("select[name=accepted]", "")
            page.select_option("select[name=duplicate]", "yes")
            page.click("#apply")
            expect(page.locator("#count-pairs")).to_have_text("1")
            # the list in paper order: open the pair with evidence
            page.goto(url + "/?sort=paper")
            page.get_by_role("link", name=a["question"], exact=True).click()
            mark = page.locator("mark.evidence-span")
            expect(mark).to_have_count(1)
            expect(mark).to_have_text(stored["quote"])
            expect(page.locator("#evidence .section-name")).to_have_text("Body of the paper")
            expect(page.locator("#paper-text")).to_contain_text(SCRIPT)  # the paper's script is text
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
            # the pair the judge rejected, with HTML in its answer: shown as text, accepted with the keyboard
            page.goto(url + "/?" + str(httpx.QueryParams({"q": b["question"]})))
            expect(page.locator("#count-pairs")).to_have_text("1")
            page.click("a.pair-link")
            expect(page.locator("#answer")).to_have_text(HTML_ANSWER)
            page.wait_for_load_state()
            expect(page.locator("#answer b")).to_have_count(0)
            expect(page.locator("#injected")).to_have_count(0)
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
    for name in ("list.png", "pair-highlight.png", "reviewed.png"):
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

    # dataset build: every paper in the test split (3 papers, 10 a category), so only what passes the policy, or a
    # reviewer accepted, is in; the rejected pair is out, the edited one has the reviewer's text
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
    # a: judge accepted, reviewer rejected; b: judge rejected, reviewer accepted; d (and c): both accepted
    agreed = 1 + (stored["c"]["qa_id"] in verdicts)
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
