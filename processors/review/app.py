"""The review app: Starlette over the store (synchronous, so called through run_in_threadpool), Jinja2 templates with
autoescape on.

    GET  /                         the pairs, filtered, sorted, paged, with counts
    GET  /pair/{qa_id}             one pair: scores and reasons, the paper text with its evidence highlighted,
                                   near-duplicates, verdict history, the verdict form
    POST /pair/{qa_id}/verdict     a reviewer's verdict (appended to the verdicts table), then the next pair
    GET  /static/...               the page's script and style (the only ones the CSP allows)

The list's filters travel in the query string; a pair's page carries them (and its position in the list) so that
"next" is the next pair of the same list.
"""

from __future__ import annotations

import contextlib
from datetime import date
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from schemas import RACAR_DIMENSIONS
from sciqag.verdicts import REJECT_REASONS, VERDICTS, check_verdict, reason_text

from ..settings import Settings
from ..store import REVIEW_SORTS, PairFilter, Store, now, open_store
from .security import CSRF_FIELD, ReviewSecurity, csrf_ok
from .text import evidence_of, pieces, sections_of

# the list's query parameters, in the order links write them (page and pos are added apart)
FILTER_PARAMS = (
    "judge",
    "category",
    "language",
    "kind",
    "accepted",
    *RACAR_DIMENSIONS,
    "gmin",
    "gmax",
    "duplicate",
    "verdict",
    "since",
    "until",
    "q",
    "sort",
    "dir",
    "per",
)
PER_PAGE, MAX_PER_PAGE = 50, 200
VERDICT_FILTERS = ("none", "reviewed", *VERDICTS)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("processors.review", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals.update(dimensions=RACAR_DIMENSIONS, reasons=REJECT_REASONS, reason_text=reason_text)
    return env


templates = Jinja2Templates(env=_environment())


def _bad(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


def _yes_no(value: str, name: str) -> bool | None:
    if value in ("", "any"):
        return None
    if value in ("yes", "no"):
        return value == "yes"
    raise _bad(f"{name}: yes, no or any")


def _number(value: str, name: str, low: float, high: float) -> float | None:
    if value == "":
        return None
    try:
        x = float(value)
    except ValueError:
        raise _bad(f"{name}: a number") from None
    if not low <= x <= high:
        raise _bad(f"{name}: between {low} and {high}")
    return x


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(f"{name}: a date, YYYY-MM-DD") from None


def parse_list_query(params) -> dict[str, Any]:
    """The list's query parameters -> {filter: PairFilter, sort, descending, per, page, query: the filters as given}."""
    p = {k: params.get(k, "").strip() for k in FILTER_PARAMS}
    scores = []
    for d in RACAR_DIMENSIONS:
        if p[d]:
            if p[d] not in ("1", "2", "3"):
                raise _bad(f"{d}: 1, 2 or 3")
            scores.append((d, int(p[d])))
    if p["kind"] not in ("", "open", "mcq"):
        raise _bad("kind: open or mcq")
    if p["verdict"] not in ("", *VERDICT_FILTERS):
        raise _bad(f"verdict: one of {', '.join(VERDICT_FILTERS)}")
    sort = p["sort"] or "paper"
    if sort not in REVIEW_SORTS:
        raise _bad(f"sort: one of {', '.join(REVIEW_SORTS)}")
    if p["dir"] not in ("", "asc", "desc"):
        raise _bad("dir: asc or desc")
    per = int(_number(p["per"], "per", 1, MAX_PER_PAGE) or PER_PAGE)
    page = int(_number(params.get("page", ""), "page", 1, 1e9) or 1)
    f = PairFilter(
        judge="" if p["judge"] in ("", "live") else p["judge"],
        category=p["category"],
        language=p["language"],
        kind=p["kind"],
        accepted=_yes_no(p["accepted"], "accepted"),
        scores=tuple(scores),
        grounding_min=_number(p["gmin"], "gmin", 0, 1),
        grounding_max=_number(p["gmax"], "gmax", 0, 1),
        duplicate=_yes_no(p["duplicate"], "duplicate"),
        verdict=p["verdict"],
        since=_day(p["since"], "since"),
        until=_day(p["until"], "until"),
        text=p["q"][:200],
    )
    query = {k: v for k, v in p.items() if v}
    return {"filter": f, "sort": sort, "descending": p["dir"] == "desc", "per": per, "page": page, "query": query}


def _qs(query: dict[str, str], **extra: Any) -> str:
    return urlencode({**query, **{k: v for k, v in extra.items() if v is not None}})


def pair_url(qa_id: str, query: dict[str, str], pos: int | None) -> str:
    qs = _qs(query, pos=pos)
    return f"/pair/{quote(qa_id, safe='')}" + (f"?{qs}" if qs else "")


def _web_link(uri: str) -> str:
    """A link for a paper's source: http(s) only (never javascript: or file:)."""
    return uri if uri.lower().startswith(("http://", "https://")) else ""


def _store(request: Request) -> Store:
    return request.app.state.store


async def pair_list(request: Request) -> Response:
    q = parse_list_query(request.query_params)
    store = _store(request)
    offset = (q["page"] - 1) * q["per"]
    rows = await run_in_threadpool(
        store.review_pairs, q["filter"], sort=q["sort"], descending=q["descending"], limit=q["per"], offset=offset
    )
    counts = await run_in_threadpool(store.review_counts, q["filter"])
    facets = await run_in_threadpool(store.review_facets)
    judges = await run_in_threadpool(store.judges)
    pages = max(1, -(-counts["pairs"] // q["per"]))
    items = [{"row": r, "url": pair_url(r["qa_id"], q["query"], offset + i)} for i, r in enumerate(rows)]
    return templates.TemplateResponse(
        request,
        "list.html",
        {
            "items": items,
            "counts": counts,
            "facets": facets,
            "judges": [j["judge_id"] for j in judges],
            "q": q["query"],
            "sorts": list(REVIEW_SORTS),
            "page": q["page"],
            "pages": pages,
            "prev_url": f"/?{_qs(q['query'], page=q['page'] - 1)}" if q["page"] > 1 else "",
            "next_url": f"/?{_qs(q['query'], page=q['page'] + 1)}" if q["page"] < pages else "",
            "list_url": f"/?{_qs(q['query'])}",
            "verdict_filters": VERDICT_FILTERS,
        },
    )


def _neighbours(store: Store, q: dict[str, Any], pos: int, qa_id: str) -> tuple[tuple | None, tuple | None]:
    """(previous, next) of this pair in its list as (qa_id, pos): the list may have moved since the page was drawn
    (a verdict took the pair out of a "not reviewed" list), so the pair is looked for around its old position."""
    start = max(0, pos - 1)
    rows = store.review_pairs(q["filter"], sort=q["sort"], descending=q["descending"], limit=3, offset=start)
    ids = [r["qa_id"] for r in rows]
    if qa_id in ids:
        at = start + ids.index(qa_id)
        prev = (ids[at - start - 1], at - 1) if at - start - 1 >= 0 else None
        nxt = (ids[at - start + 1], at + 1) if at - start + 1 < len(ids) else None
        return prev, nxt
    # gone from the list: what is now at its position comes next
    at = pos - start
    prev = (ids[at - 1], pos - 1) if 0 <= at - 1 < len(ids) else None
    nxt = (ids[at], pos) if at < len(ids) else None
    return prev, nxt


def _position(params) -> int | None:
    value = params.get("pos", "")
    return int(value) if value.isdigit() else None


async def pair_page(request: Request) -> Response:
    qa_id = request.path_params["qa_id"]
    q = parse_list_query(request.query_params)
    store = _store(request)
    row = await run_in_threadpool(store.review_pair, qa_id, q["filter"].judge)
    if row is None:
        raise HTTPException(status_code=404, detail="no such pair (or the chosen judge did not score it)")
    pos = _position(request.query_params)
    prev = nxt = None
    if pos is not None:
        prev, nxt = await run_in_threadpool(_neighbours, store, q, pos, qa_id)

    def load() -> dict[str, Any]:
        text = store.paper_texts([row["paper_id"]]).get(row["paper_id"])
        canonical = store.review_pair(row["duplicate_of"]) if row["duplicate_of"] else None
        return {
            "text": text,
            "duplicates": store.near_duplicates(qa_id),
            "canonical": canonical,
            "history": store.verdict_history(qa_id),
        }

    extra = await run_in_threadpool(load)
    evidence = evidence_of(row.get("evidence"))
    text_pieces = []
    if extra["text"] is not None:
        text_pieces = pieces(extra["text"]["text"], evidence, sections_of(extra["text"]["sections"]))
    return templates.TemplateResponse(
        request,
        "pair.html",
        {
            "row": row,
            "evidence": evidence,
            "pieces": text_pieces,
            "has_text": extra["text"] is not None,
            "duplicates": [{**d, "url": pair_url(d["qa_id"], q["query"], None)} for d in extra["duplicates"]],
            "canonical": extra["canonical"],
            "canonical_url": pair_url(row["duplicate_of"], q["query"], None) if extra["canonical"] else "",
            "history": extra["history"],
            "doi_url": f"https://doi.org/{quote(row['doi'], safe='/')}" if row.get("doi") else "",
            "source_url": _web_link(row.get("source_uri", "")),
            "prev_url": pair_url(prev[0], q["query"], prev[1]) if prev else "",
            "next_url": pair_url(nxt[0], q["query"], nxt[1]) if nxt else "",
            "list_url": f"/?{_qs(q['query'])}",
            "back": _qs(q["query"]),
            "pos": "" if pos is None else pos,
            "csrf": request.state.csrf,
            "csrf_field": CSRF_FIELD,
            "saved": request.query_params.get("saved", ""),
        },
    )


async def post_verdict(request: Request) -> Response:
    qa_id = request.path_params["qa_id"]
    form = await request.form()
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return templates.TemplateResponse(
            request, "error.html", {"status": 403, "message": "the form's CSRF token is missing or stale: reload"}, 403
        )
    store = _store(request)
    row = await run_in_threadpool(store.review_pair, qa_id, "")
    if row is None:
        raise HTTPException(status_code=404, detail="no such pair")
    verdict = str(form.get("verdict", ""))
    reviewer = str(form.get("reviewer", "")).strip()
    reason = str(form.get("reason_text", "")).strip() or str(form.get("reason", "")).strip()
    question = str(form.get("question", "")).strip() if verdict == "edit" else ""
    answer = str(form.get("answer", "")).strip() if verdict == "edit" else ""
    if verdict == "edit" and question == row["question"].strip() and answer == row["answer"].strip():
        verdict, question, answer = "accept", "", ""  # nothing edited: an acceptance
    try:
        check_verdict(verdict, reviewer, reason, question, answer)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    entry = {
        "paper_id": row["paper_id"],
        "qa_id": qa_id,
        "reviewer": reviewer,
        "verdict": verdict,
        "reason": reason if verdict == "reject" else "",
        "edited_question": question,
        "edited_answer": answer,
        "decided_at": now(),
    }
    await run_in_threadpool(store.insert_verdicts, [entry])
    back = dict(parse_qsl(str(form.get("back", ""))))
    q = parse_list_query(back)
    pos = _position(form)
    if pos is not None:
        _, nxt = await run_in_threadpool(_neighbours, store, q, pos, qa_id)
        if nxt:
            return RedirectResponse(pair_url(nxt[0], {**q["query"], "saved": verdict}, nxt[1]), 303)
        return RedirectResponse(f"/?{_qs(q['query'], saved=verdict)}", 303)
    return RedirectResponse(pair_url(qa_id, {**q["query"], "saved": verdict}, None), 303)


async def http_error(request: Request, exc: HTTPException) -> Response:
    return templates.TemplateResponse(
        request, "error.html", {"status": exc.status_code, "message": exc.detail}, exc.status_code
    )


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """The app over a store opened from the settings (or the one given, left open), with the token of the settings
    (none: loopback only)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if store is not None:
            app.state.store = store
            yield
            return
        with open_store(settings) as opened:
            app.state.store = opened
            yield

    static = StaticFiles(directory=str(resources.files("processors.review") / "static"))
    return Starlette(
        routes=[
            Route("/", pair_list),
            Route("/pair/{qa_id:str}", pair_page),
            Route("/pair/{qa_id:str}/verdict", post_verdict, methods=["POST"]),
            Mount("/static", static, name="static"),
        ],
        middleware=[Middleware(ReviewSecurity, token=settings.review_token)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
