"""The `sciqag` command."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from .settings import Settings

DESCRIPTION = """\
sciqag-stream: scientific papers in, judged question-answer pairs out (SciQAG, continuously).

papers (Kafka) -> extractor (PyMuPDF) -> generator (vLLM) -> judge (vLLM, RACAR) -> ClickHouse + sciqag.qa.scored

With nothing configured every service is embedded: a Tansu broker on loopback,
chDB (in-process ClickHouse) under --data-dir, and the bundled SmolLM2-135M model.
Settings come from SCIQAG_* environment variables (see README); flags win.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="where embedded ClickHouse and caches live (SCIQAG_DATA_DIR, default .sciqag)")
    p.add_argument("--broker", dest="broker_url", help="Kafka broker URL, kafka://host:9092 (SCIQAG_BROKER_URL; default: embedded Tansu)")
    p.add_argument("--log-level", help="WARNING, INFO or DEBUG (SCIQAG_LOG_LEVEL)")


def _engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder for vLLM (SCIQAG_MODEL; default: the bundled SmolLM2-135M-Instruct); "
                                   "with --llm-url, the served model's name")
    p.add_argument("--llm-url", help="an OpenAI-compatible server, e.g. http://vllm:8000/v1 (SCIQAG_LLM_URL; default: "
                                     "vLLM in this process)")
    p.add_argument("--pairs", dest="pairs_per_paper", type=int, help="QA pairs per paper (SCIQAG_PAIRS_PER_PAPER, default 10)")
    p.add_argument("--keywords", dest="keywords_per_paper", type=int, help="keywords per paper (default 15)")
    p.add_argument("--mcq", dest="mcq_per_paper", type=int,
                   help="four-option multiple-choice items per paper (SCIQAG_MCQ_PER_PAPER, default 4; 0: none)")
    p.add_argument("--max-context-tokens", type=int, help="paper tokens given to the model (default: what the window allows)")
    p.add_argument("--max-model-len", type=int, help="the engine's context window (default 8192)")
    p.add_argument("--max-in-flight", type=int, help="concurrent LLM requests (default 16)")
    p.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (SCIQAG_METRICS_PORT, default 6066)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciqag", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="the main job: process PDFs end to end and print a summary",
                       description="Start what is needed, publish every file under PATH, wait until each paper is "
                                   "scored or dead-lettered, print a summary, stop everything. Re-running on the same "
                                   "--data-dir replaces rows instead of duplicating them.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="PDF files or directories")
    p.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds (default 3600)")
    p.add_argument("--linger", type=float, default=0, help="keep the metrics endpoint up this long after finishing")
    p.add_argument("--summary-json", type=Path, help="also write the summary as JSON to this file")
    _common(p)
    _engine(p)

    p = sub.add_parser("worker", help="a long-running worker against the configured services",
                       description="Run the agents until stopped (SIGTERM/Ctrl-C).")
    p.add_argument("--agents", help="comma-separated subset of extractor,generator,judge,sink (default: all)")
    _common(p)
    _engine(p)

    p = sub.add_parser("publish", help="publish PDFs or a JSONL feed of PaperSubmitted records to sciqag.papers")
    p.add_argument("paths", nargs="+", metavar="PATH", help="PDF files, directories, or .jsonl feed files")
    p.add_argument("--inline", action="store_true", help="send the PDF bytes in the record instead of a file:// location")
    _common(p)

    p = sub.add_parser("feed", help="ingest publisher feeds (arXiv, RSS, OAI-PMH, Crossref, inbox) into sciqag.papers",
                       description="Poll every source of the config file on its own interval and publish each new "
                                   "paper once (deduplicated by DOI, else PDF link or bytes, across sources and "
                                   "restarts). Checkpoints, HTTP validators and submitted ids live in "
                                   "<state_dir>/feeds.sqlite (default <data-dir>/feeds). See the README for the "
                                   "config format.")
    p.add_argument("--config", type=Path, default=Path("feeds.toml"), help="the sources (TOML; default feeds.toml)")
    p.add_argument("--once", action="store_true", help="poll every source once, print a table and exit "
                                                       "(exit code 1 if a source failed)")
    p.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default 6067; --once: none)")
    _common(p)

    p = sub.add_parser("extract", help="extraction only: print the cleaned text (or --json) of PDFs")
    p.add_argument("pdfs", nargs="+", type=Path, metavar="PDF")
    p.add_argument("--json", action="store_true", help="one JSON object per PDF with text, sections and statistics")

    p = sub.add_parser("export", help="write the scored pairs from ClickHouse, one JSON object per line",
                       description="jsonl: every scored pair (open and multiple-choice) with ids, keywords and the "
                                   "five scores. mera: the accepted multiple-choice items in MERA's ruWorldTree format "
                                   "(answer letters balanced over A-D, 10 instruction templates spread evenly).")
    p.add_argument("--format", choices=["jsonl", "mera"], default="jsonl")
    p.add_argument("--all", action="store_true", help="mera: include items the judge did not accept")
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    _common(p)

    p = sub.add_parser("replay", help="publish stored papers again (by id or by time range) to reprocess them",
                       description="Reads the chosen papers from ClickHouse and publishes them to sciqag.papers under "
                                   "their own paper_id: their pairs come back under the same qa_ids and replace the "
                                   "stored ones, and pairs the new run no longer has are deleted, so a replay never "
                                   "duplicates results. Papers are refetched from their source_uri; inline uploads "
                                   "are skipped (their PDF is not stored). The time range is on when a paper's "
                                   "latest outcome was stored (papers.updated_at), UTC unless a zone is given. "
                                   "On the embedded broker, run `sciqag run` on the files again instead.")
    p.add_argument("--paper-id", dest="paper_ids", action="append", metavar="ID", help="a paper to replay (repeatable)")
    p.add_argument("--ids-file", type=Path, help="a file of paper ids, one per line")
    p.add_argument("--since", help="papers stored at or after this ISO 8601 time, e.g. 2026-11-21T08:00")
    p.add_argument("--until", help="papers stored before this ISO 8601 time")
    p.add_argument("--status", choices=["scored", "failed", "any"], default="any",
                   help="only papers whose latest outcome is this (default any)")
    p.add_argument("--all", action="store_true", help="every stored paper (with --status, every such paper)")
    p.add_argument("--out", type=Path, help="write the records as JSONL (for `sciqag publish`) instead of publishing")
    p.add_argument("--dry-run", action="store_true", help="list what would be replayed and publish nothing")
    _common(p)

    p = sub.add_parser("stats", help="corpus report: RACAR, acceptance, diversity, coverage, numeric support",
                       description="Print the report by journal/category and write it as an HTML page with plots.")
    p.add_argument("--html", type=Path, default=None, help="HTML report file (default: <data-dir>/stats.html)")
    _common(p)

    p = sub.add_parser("eval-mcq", help="evaluate a model on a MERA-format multiple-choice file (accuracy, macro-F1)",
                       description="Scores the four letter continuations by log-likelihood, as the MERA harness does "
                                   "(--mode loglik), or generates and extracts the letter (--mode generate).")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--model", help="model folder (default: the bundled SmolLM2-135M-Instruct)")
    p.add_argument("--shots", type=int, default=0, help="worked examples before each item (default 0)")
    p.add_argument("--mode", choices=["loglik", "generate"], default="loglik")
    p.add_argument("--out", type=Path, help="per-item predictions as JSONL")
    p.add_argument("--limit", type=int, default=0, help="only the first N items")
    p.add_argument("--exact", action="store_true",
                   help="loglik: score every letter from the prompt logprobs of context + letter (slower; the default "
                        "reads single-token letters from the next-token logprobs, which is the same quantity)")
    p.add_argument("--max-model-len", type=int, default=4096)

    p = sub.add_parser("dataset", help="SciQAG-24D-style benchmarks: import SciQAG's release, build train/test splits",
                       description="build: splits from the pairs in ClickHouse. import-sciqag: SciQAG release records "
                                   "into ClickHouse through the real judge and sink.")
    dsub = p.add_subparsers(dest="dataset_command", required=True, metavar="SUBCOMMAND")
    d = dsub.add_parser("build", help="write the test and train splits (JSONL + Parquet, three shapes) and a card",
                        description="Test split: per category (journal, else first subject), --per-category papers "
                                    "drawn with --seed from those with a pair passing the acceptance policy (strict: "
                                    "every RACAR dimension 3), with only those pairs. Train split: every other "
                                    "paper's pairs that pass the rule-based filter. Split by paper. Re-running after "
                                    "an interruption keeps the files already written for the same data and options.")
    d.add_argument("--per-category", type=int, default=50, help="test papers per category (default 50, as SciQAG-24D)")
    d.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    d.add_argument("--policy", choices=["strict", "mean2.5"], default="strict",
                   help="acceptance policy for the test split (default strict)")
    d.add_argument("--out", type=Path, default=Path("sciqag-24d"), help="output folder (default ./sciqag-24d)")
    _common(d)
    d = dsub.add_parser("import-sciqag", help="load SciQAG release records (text + Q/A pairs) as if streamed",
                        description="Each record's pairs go to the judge topic as one paper; the judge and sink "
                                    "agents score and store them like streamed pairs (prompt_version "
                                    "'sciqag-release'). Papers already stored are skipped (--force redoes them).")
    d.add_argument("file", type=Path, metavar="FILE", help="JSONL: {doi, journal, keywords, text, qa: [{q, a}]}")
    d.add_argument("--limit", type=int, default=0, help="only the first N papers")
    d.add_argument("--assume-score", type=int, choices=[1, 2, 3],
                   help="skip the judge and record every RACAR dimension as this score (for releases judged "
                        "elsewhere); judge_model says 'assumed:N'")
    d.add_argument("--force", action="store_true", help="import papers that are already stored again")
    d.add_argument("--timeout", type=float, default=7200, help="give up after this many seconds (default 7200)")
    _common(d)
    _engine(d)

    p = sub.add_parser("eval-open", help="closed-book QA: a model answers a test split, a judge grades it (CAR 1-5)",
                       description="The model answers each question without the paper; the judge scores each answer "
                                   "against the reference on completeness, accuracy and reasonableness (1-5, with "
                                   "reasons, structured output). Prints means overall and per category. Results are "
                                   "appended to --out as they come; a re-run resumes.")
    p.add_argument("file", type=Path, metavar="TEST.jsonl", help="a test split: {question, answer, category} or {Q, A}")
    p.add_argument("--model", help="the evaluated model's folder (default: the bundled SmolLM2-135M-Instruct); "
                                   "with --llm-url, the served model's name")
    p.add_argument("--judge", help="the judge model (default: the same as --model)")
    p.add_argument("--out", type=Path, help="per-item results JSONL (default: <FILE stem>.<model name>.results.jsonl)")
    p.add_argument("--compare", type=Path, metavar="RESULTS.jsonl", help="another run's results, shown side by side")
    p.add_argument("--limit", type=int, default=0, help="only the first N questions")
    p.add_argument("--llm-url", help="an OpenAI-compatible server instead of vLLM in this process (SCIQAG_LLM_URL)")
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument("--answer-max-tokens", type=int, default=256)
    p.add_argument("--log-level", help="WARNING, INFO or DEBUG")

    p = sub.add_parser("compare-sciqag", help="our quality metrics on the SciQAG authors' pairs, beside the paper's figures")
    p.add_argument("--data", type=Path, default=Path("../shared/data/sciqag/papers_dev.jsonl"),
                   help="SciQAG release records (JSONL with text and qa)")

    p = sub.add_parser("schemas", help="write JSON Schema files for every topic record (and the ClickHouse DDL)")
    p.add_argument("--out", type=Path, default=Path("schemas/json"), help="output folder (default schemas/json)")
    p.add_argument("--ddl", type=Path, help="also write the ClickHouse DDL as one SQL file (database 'sciqag')")

    p = sub.add_parser("prepare-model", help="convert the bundled model once into the cache and print its folder")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    values = {k: v for k, v in vars(args).items() if v is not None}
    if isinstance(values.get("agents"), str):
        values["agents"] = [a.strip() for a in values["agents"].split(",") if a.strip()]
    return Settings().with_overrides(**values)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = globals()[f"cmd_{args.command.replace('-', '_')}"]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"sciqag {args.command}: error: {exc}", file=sys.stderr)
        return 2


def cmd_run(args) -> int:
    from .publish import input_files
    from .runner import RunReport, configure_logging, format_summary, make_run_job, run_worker

    settings = settings_from(args)
    configure_logging(settings.log_level)
    files = input_files(args.paths)  # fail fast on a missing path, before anything starts
    if not files:
        raise ValueError("no files found under the given paths")
    roots = {str(p.resolve().parent) for p in files}
    settings = settings.with_overrides(file_roots=sorted(set(settings.file_roots) | roots))
    report = RunReport()
    code = run_worker(settings, make_run_job(args.paths, report, timeout_s=args.timeout, linger_s=args.linger))
    summary = format_summary(report)
    print(summary)
    if args.summary_json:
        from .runner import summary_dict

        args.summary_json.write_text(json.dumps(summary_dict(report), indent=2) + "\n")
    return code


def service_log_level(args) -> str:
    """Long-running services log at INFO unless --log-level or SCIQAG_LOG_LEVEL says otherwise."""
    return args.log_level or os.environ.get("SCIQAG_LOG_LEVEL") or "INFO"


def cmd_worker(args) -> int:
    from .runner import configure_logging, run_worker

    settings = settings_from(args)
    configure_logging(service_log_level(args))
    return run_worker(settings)


def cmd_publish(args) -> int:
    from .kafka_auth import aiokafka_security
    from .publish import bootstrap_servers, input_files, produce, record_for_file, records_from_jsonl

    settings = settings_from(args)
    if not settings.broker_url:
        raise ValueError("publish needs a broker: set SCIQAG_BROKER_URL or --broker (use `sciqag run` for the embedded one)")
    records = []
    for path in input_files(args.paths):
        if path.suffix == ".jsonl":
            records.extend(records_from_jsonl(path))
        else:
            records.append(record_for_file(path, source_feed="sciqag-publish",
                                           inline_limit=settings.max_inline_bytes if args.inline else 0))
    sent = asyncio.run(produce(bootstrap_servers(settings.broker_url), records, security=aiokafka_security(settings)))
    print(f"published {sent} papers to sciqag.papers")
    return 0


def cmd_feed(args) -> int:
    from .feeds import FeedState, KafkaPublisher, load_config, run_feeds
    from .kafka_auth import aiokafka_security
    from .publish import bootstrap_servers
    from .runner import configure_logging, quiet_repeated_kafka_logs

    settings = settings_from(args)
    configure_logging(service_log_level(args))
    quiet_repeated_kafka_logs()  # a feed runs for days: a broker outage must not flood its log either
    if not settings.broker_url:
        raise ValueError("feed needs a broker: set SCIQAG_BROKER_URL or --broker")
    if not args.config.exists():
        raise FileNotFoundError(f"feed config {args.config} not found (see README: Publisher feeds)")
    config = load_config(args.config, settings.data_dir / "feeds")
    port = args.metrics_port or (0 if args.once else 6067)
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
    return asyncio.run(run_feeds(config, FeedState(config.state_dir / "feeds.sqlite"),
                                 KafkaPublisher(bootstrap_servers(settings.broker_url), aiokafka_security(settings)),
                                 once=args.once))


def cmd_extract(args) -> int:
    from sciqag.errors import ExtractionError
    from sciqag.extraction import extract_pdf

    failures = 0
    for pdf in args.pdfs:
        try:
            result = extract_pdf(pdf.read_bytes())
        except (ExtractionError, OSError) as exc:
            failures += 1
            kind = getattr(exc, "kind", "unreadable")
            if args.json:
                print(json.dumps({"file": str(pdf), "error_kind": kind, "error": str(exc)}, ensure_ascii=False))
            else:
                print(f"{pdf}: {kind}: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({
                "file": str(pdf), "title": result.title, "pages": result.pages, "language": result.language,
                "chars": len(result.text), "removed": result.removed,
                "sections": [{"title": t, "start": s, "end": e} for t, s, e in result.sections],
                "text": result.text,
            }, ensure_ascii=False))
        else:
            print(f"===== {pdf} ({result.pages} pages, {len(result.text)} chars, {result.language})")
            print(result.text)
    return 1 if failures else 0


def _read_store(args, read):
    from .store import Store

    store = Store(settings_from(args))
    try:
        store.ensure_schema()
        return read(store)
    finally:
        store.close()


def cmd_export(args) -> int:
    from sciqag.export import export_records, mera_items
    from sciqag.mera import to_mera

    rows = _read_store(args, lambda store: store.qa_rows())
    if args.format == "mera":
        records = to_mera(mera_items(rows, accepted_only=not args.all))
    else:
        records = list(export_records(rows))
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(records)} {'items' if args.format == 'mera' else 'pairs'} to {args.out}", file=sys.stderr)
    return 0


def cmd_replay(args) -> int:
    import msgspec

    from .kafka_auth import aiokafka_security
    from .publish import bootstrap_servers, produce
    from .replay import parse_time, select

    paper_ids = list(args.paper_ids or [])
    if args.ids_file:
        paper_ids += [line.strip() for line in args.ids_file.read_text().splitlines() if line.strip()]
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    if not (paper_ids or since or until or args.all):
        raise ValueError("choose the papers: --paper-id/--ids-file, --since/--until, or --all")
    settings = settings_from(args)
    if not (args.out or args.dry_run or settings.broker_url):
        raise ValueError("replay publishes to a broker: set SCIQAG_BROKER_URL or --broker, or write --out FILE.jsonl")
    selection = _read_store(args, lambda store: select(store, paper_ids=paper_ids or None, since=since, until=until,
                                                       status=args.status))
    for paper_id, why in selection.skipped:
        print(f"skipped {paper_id}: {why}", file=sys.stderr)
    for paper_id in selection.missing:
        print(f"not found: {paper_id} is not in the papers table", file=sys.stderr)
    if args.dry_run:
        for record in selection.records:
            print(f"{record.paper_id}\t{record.pdf_uri}")
        print(f"would replay {len(selection.records)} papers", file=sys.stderr)
    elif args.out:
        with open(args.out, "wb") as out:
            for record in selection.records:
                out.write(msgspec.json.encode(record) + b"\n")
        print(f"wrote {len(selection.records)} papers to {args.out}; publish them with `sciqag publish {args.out}`")
    else:
        sent = asyncio.run(produce(bootstrap_servers(settings.broker_url), selection.records,
                                   security=aiokafka_security(settings)))
        print(f"replayed {sent} papers to sciqag.papers")
    if selection.missing:
        return 1
    return 0


def cmd_stats(args) -> int:
    from sciqag.stats import corpus_stats, format_table, html_report

    qa, papers = _read_store(args, lambda store: (store.qa_rows(), store.papers()))
    scored = [p for p in papers if p["status"] == "scored"]
    groups = corpus_stats(qa, scored)
    print(format_table(groups))
    failed = len(papers) - len(scored)
    print(f"\n{len(scored)} papers scored, {failed} failed; {len(qa)} pairs "
          f"({sum(1 for r in qa if r['kind'] == 'mcq')} multiple-choice)")
    target = args.html or settings_from(args).data_dir / "stats.html"
    target.write_text(html_report(groups, qa, scored), encoding="utf-8")
    print(f"HTML report: {target}")
    return 0


def cmd_eval_mcq(args) -> int:
    from .app import engine_options
    from .evaluate import eval_mcq
    from .models import prepare_bundled_model
    from .runner import configure_logging

    settings = settings_from(args).with_overrides(max_model_len=args.max_model_len, temperature=0.0, max_in_flight=32)
    configure_logging(settings.log_level)
    model = args.model or str(prepare_bundled_model())
    result = eval_mcq(args.file, engine_options(settings, model), shots=args.shots, mode=args.mode, out=args.out,
                      limit=args.limit, exact=args.exact)
    print(f"items {result['items']}  accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
          f"unanswered {result['unanswered']}  time {result['seconds']:.0f} s")
    if args.out:
        print(f"predictions: {args.out}")
    return 0


def cmd_dataset(args) -> int:
    from .runner import configure_logging

    settings = settings_from(args)
    configure_logging(settings.log_level)
    if args.dataset_command == "build":
        from .dataset import build_dataset

        rows = _read_store(args, lambda store: store.qa_rows())
        if not rows:
            raise ValueError(f"no pairs stored under {settings.data_dir} (run the pipeline or `dataset import-sciqag`)")
        split, written = build_dataset(rows, args.out, per_category=args.per_category, seed=args.seed,
                                       policy=args.policy, source=f"ClickHouse database '{settings.clickhouse_database}'")
        for cat, by_split in split.counts().items():
            tp, tq = by_split.get("test", (0, 0))
            rp, rq = by_split.get("train", (0, 0))
            print(f"{cat}: test {tp} papers / {tq} pairs, train {rp} papers / {rq} pairs")
        print(f"test {len(split.papers('test'))} papers / {len(split.test)} pairs; train {len(split.papers('train'))} "
              f"papers / {len(split.train)} pairs; {len(written)} files written, card {args.out / 'README.md'}")
        return 0

    from .dataset import import_assumed, make_import_job, read_release
    from .runner import run_worker

    if not args.file.exists():
        raise FileNotFoundError(f"{args.file} not found (SciQAG records live in ../shared/data/sciqag)")
    papers = read_release(args.file, args.limit)
    if args.assume_score:
        stored, pairs, skipped = import_assumed(settings, papers, args.assume_score, force=args.force)
        print(f"imported {stored} papers, {pairs} pairs, every score assumed {args.assume_score}; "
              f"{skipped} papers already stored")
        return 0
    counts: dict = {}
    code = run_worker(settings.with_overrides(agents=["judge", "sink"]),
                      make_import_job(papers, counts, force=args.force, timeout_s=args.timeout))
    print(f"judged and stored {counts.get('scored', 0)} papers, {counts.get('failed', 0)} failed; "
          f"{counts.get('skipped', 0)} already stored")
    return code


def cmd_eval_open(args) -> int:
    from sciqag.open_eval import car_means, format_comparison, format_means, read_results

    from .eval_open import eval_open
    from .models import prepare_bundled_model
    from .runner import configure_logging

    settings = settings_from(args).with_overrides(max_model_len=args.max_model_len, temperature=0.0)
    configure_logging(settings.log_level)
    for path in (args.file, args.compare):
        if path and not path.exists():
            raise FileNotFoundError(f"{path} not found")
    if settings.llm_url:
        if not args.model:
            raise ValueError("with --llm-url, --model names the served model")
        model = args.model
    else:
        model = args.model or str(prepare_bundled_model())
    judge = args.judge or model
    out = args.out or args.file.with_name(f"{args.file.stem}.{Path(model).name}.results.jsonl")
    run = eval_open(args.file, settings, model=model, judge=judge, out=out, limit=args.limit,
                    answer_max_tokens=args.answer_max_tokens)
    means = car_means(run["results"])
    print(format_means(means, f"CAR (1-5), answers by {Path(model).name}, judged by {Path(judge).name}"))
    for key, label in (("answer_seconds_per_item", "answering"), ("judge_seconds_per_item", "grading")):
        if run[key] is not None:
            print(f"{label}: {run[key]:.2f} s per question")
    print(f"per-item results: {out}")
    if args.compare:
        print()
        print(format_comparison(car_means(read_results(args.compare)), means, args.compare.name, out.name))
    return 0


def cmd_compare_sciqag(args) -> int:
    from sciqag.embeddings import embed
    from sciqag.release_check import check_release, format_table, load_records

    if not args.data.exists():
        raise FileNotFoundError(f"{args.data} not found (the SciQAG records live in ../shared/data/sciqag)")
    print(format_table(check_release(load_records(args.data), embed)))
    return 0


def cmd_schemas(args) -> int:
    from schemas.jsonschema import write_json_schemas

    for path in write_json_schemas(args.out):
        print(path)
    if args.ddl:
        from schemas.ddl import ddl_script

        args.ddl.write_text(ddl_script("sciqag"))
        print(args.ddl)
    return 0


def cmd_prepare_model(args) -> int:
    from .models import prepare_bundled_model

    print(prepare_bundled_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
