"""Scale-out: papers/min through the extractor with 1 and 2 `sciqag worker --agents extractor` processes on the same
backlog, and through the sink with 1 and 2 `--agents sink` members; each ratio against the 1-worker figure of the same
run. Real parts, as tests/scale_out.py starts them: a Tansu broker with 4 partitions a topic, and for the sink chDB
behind ClickHouse's HTTP interface (two writers need a server).

The backlog is on the topic before the workers start; each figure is the rate from 10% to 90% of the papers left once
the group has formed (every partition held, by K members). The extractor's backlog is the real PDFs
of ../shared/data/pdfs, each copy with its own metadata (so its own paper_id); the sink's is scored pairs, 10 a paper,
stored without the near-duplicate check (SCIQAG_NEAR_DUPLICATES=0).
On a machine with C cores the extractor's ratio is bounded by min(2, C / what one worker keeps busy): one worker with
one extraction process keeps about one core busy, so 2 cores allow up to ~2x when nothing else runs.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from .common import PDFS, Row

PARTITIONS = 4


def _copies(out: Path, count: int) -> list[Path]:
    import pymupdf

    from sciqag.extraction import ExtractionError, extract_pdf

    bases = []
    for f in sorted(PDFS.glob("*.pdf")):
        try:
            extract_pdf(f.read_bytes(), ocr="off")
            bases.append(f.read_bytes())
        except ExtractionError:  # the scan: OCR would make the figure about Tesseract
            pass
    if not bases:
        raise FileNotFoundError(f"no text PDFs in {PDFS}")
    paths = []
    for i in range(count):
        with pymupdf.open(stream=bases[i % len(bases)], filetype="pdf") as doc:
            doc.set_metadata({**doc.metadata, "subject": f"sciqag-stream scaling copy {i}"})
            path = out / f"copy_{i:04d}.pdf"
            path.write_bytes(doc.tobytes())
        paths.append(path)
    return paths


def _measure(deployment, role: str, members: int, total: int, stage: str, timeout: float) -> tuple[float, int]:
    """Start `members` workers of `role` on a backlog of `total` papers; (papers/min after the group formed, papers
    counted in that span)."""
    from tests.e2e import metric
    from tests.scale_out import ROLE_TOPICS, wait_until

    workers = [deployment.start_worker(f"{role}-{members}-{i}", role) for i in range(members)]
    _, topics = ROLE_TOPICS[role]
    every = {(t, p) for t in topics for p in range(PARTITIONS)}

    def formed():
        held = [w.held() for w in workers]
        return all(held) and set().union(*held) == every and sum(map(len, held)) == len(every)

    def done() -> float:
        return sum(metric(w.metrics(), "sciqag_papers_total", stage=stage) for w in workers)

    wait_until(formed, timeout, f"{members} {role} workers holding every partition", poll=0.1)
    start = done()
    rest = total - start
    # the rate between 10% and 90% of the papers left: without each worker's first paper (its extraction process
    # starting, its first batch) and the drain at the end, where one member may have finished its partitions first
    low, high = start + 0.1 * rest, start + 0.9 * rest
    marks = {}

    def reached() -> bool:
        value, now = done(), time.monotonic()
        for name, level in (("low", low), ("high", high)):
            if value >= level and name not in marks:
                marks[name] = (now, value)
        return "high" in marks

    wait_until(reached, timeout, f"{total} papers through {role}", poll=0.1)
    for w in workers:
        w.proc.terminate()
    for w in workers:
        w.proc.wait(60)
    (t0, v0), (t1, v1) = marks["low"], marks["high"]
    return (v1 - v0) / (t1 - t0) * 60, int(v1 - v0)


def _produce_scored(bootstrap: str, papers: int) -> None:
    from aiokafka import AIOKafkaProducer

    from schemas import encode
    from schemas import topics as T

    from .sink import scored_records

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, compression_type="gzip")
        await producer.start()
        try:
            for record in scored_records(papers * 10, pairs_per_paper=10):
                await producer.send(T.SCORED, key=record.paper.paper_id.encode(), value=encode(record))
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def run(
    extract_papers: int = 300, sink_papers: int = 3000, timeout: float = 600, stages=("extractor", "sink")
) -> list[Row]:
    from processors.ingest.publish import produce, record_for_file
    from processors.local.broker import free_port, stop_process, tansu_broker
    from processors.settings import Settings
    from tests.clickhouse_http import start_clickhouse_http
    from tests.scale_out import Deployment, create_topics, worker_env

    rows: list[Row] = []
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="sciqag-scaling-") as tmp:
        root = Path(tmp)
        inbox = root / "inbox"
        inbox.mkdir()
        records = [record_for_file(p) for p in _copies(inbox, extract_papers)]
        extract = {}
        for members in (1, 2) if "extractor" in stages else ():
            with tansu_broker() as broker:
                dep = Deployment(root, broker, worker_env(SCIQAG_FILE_ROOTS=str(inbox), SCIQAG_LOG_LEVEL="WARNING"))
                asyncio.run(create_topics(dep.bootstrap, PARTITIONS))
                asyncio.run(produce(Settings(broker_url=broker), records))
                try:
                    extract[members] = _measure(dep, "extractor", members, extract_papers, "extractor", timeout)
                finally:
                    dep.stop()
        sink = {}
        for members in (1, 2) if "sink" in stages else ():
            ch_port = free_port()
            clickhouse = start_clickhouse_http(root / f"ch-{members}", ch_port, root / f"ch-{members}.log")
            try:
                with tansu_broker() as broker:
                    env = worker_env(
                        SCIQAG_CLICKHOUSE_DSN=f"http://default@127.0.0.1:{ch_port}/?compress=false",
                        SCIQAG_LOG_LEVEL="WARNING",
                        # the storage path only: the corpus-wide near-duplicate check (issue 19) embeds every question
                        # and dominates (the sink took none of 3,000 such pairs in 10 minutes here)
                        SCIQAG_NEAR_DUPLICATES="0",
                        # batches of 50 papers, so that the 10%-90% span holds many of them (5,000 rows: 500 papers)
                        SCIQAG_SINK_BATCH_ROWS="500",
                    )
                    dep = Deployment(root, broker, env)
                    asyncio.run(create_topics(dep.bootstrap, PARTITIONS))
                    _produce_scored(dep.bootstrap, sink_papers)
                    try:
                        sink[members] = _measure(dep, "sink", members, sink_papers, "sink", timeout)
                    finally:
                        dep.stop()
            finally:
                stop_process(clickhouse, 10)
    load = os.getloadavg()[0]
    for stage, figures, unit in (("extractor", extract, "real PDFs"), ("sink", sink, "papers of 10 scored pairs")):
        if not figures:
            continue
        (one, n1), (two, n2) = figures[1], figures[2]
        rows.append(
            Row(
                f"scale-out {stage}",
                f"{stage} papers/min, 2 workers",
                two,
                f"{stage} papers/min, 1 worker",
                one,
                note=(
                    f"{n1} / {n2} {unit} counted (10% to 90% of the backlog), 4 partitions; {cores} cores, load "
                    f"average {load:.1f} at the end (other processes share the cores)"
                ),
            )
        )
    return rows


if __name__ == "__main__":
    import sys

    from .common import format_table

    print(format_table(run(stages=tuple(sys.argv[1].split(",")) if len(sys.argv) > 1 else ("extractor", "sink"))))
