"""Example downstream consumer of `sciqag.qa.scored`.

Standalone on purpose: it needs only aiokafka and jsonschema, and validates every record
against the JSON Schema that `sciqag schemas` generates (schemas/json/QAScored.schema.json),
so a consumer in any language can follow the same contract.

    python deploy/examples/consumer.py --bootstrap localhost:9094 --accepted-only > pairs.jsonl

On the embedded broker (Tansu) give it `--session-timeout-ms 6000`: Tansu completes a group's first join only after
about half the session timeout (~5 s at aiokafka's default of 10 s).

Records carry `schema_version`; this consumer reads version 1 and skips (and counts) others.
New fields may appear in later records: the schema allows them and this code ignores them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import jsonschema
from aiokafka import AIOKafkaConsumer

SUPPORTED_VERSION = 1
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "json" / "QAScored.schema.json"


async def consume(args: argparse.Namespace) -> int:
    validator = jsonschema.Draft202012Validator(json.loads(args.schema.read_text()))
    consumer = AIOKafkaConsumer(
        "sciqag.qa.scored",
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(500, args.session_timeout_ms // 6),
    )
    await consumer.start()
    seen = invalid = 0
    try:
        async for message in consumer:
            seen += 1
            try:
                record = json.loads(message.value)
                validator.validate(record)
            except (ValueError, jsonschema.ValidationError) as exc:
                invalid += 1
                print(f"skipping invalid record at offset {message.offset}: {str(exc)[:200]}", file=sys.stderr)
            else:
                if record.get("schema_version") != SUPPORTED_VERSION:
                    invalid += 1
                elif record["accepted"] or not args.accepted_only:
                    scores = {d: record["racar"][d]["score"] for d in record["racar"]}
                    print(
                        json.dumps(
                            {
                                "qa_id": record["qa_id"],
                                "paper_id": record["paper"]["paper_id"],
                                "doi": record["paper"]["doi"],
                                "question": record["question"],
                                "answer": record["answer"],
                                "scores": scores,
                            },
                            ensure_ascii=False,
                        ),
                        flush=True,
                    )
            if args.max_messages and seen >= args.max_messages:
                break
    finally:
        await consumer.stop()
    print(f"read {seen} records, {invalid} skipped", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="localhost:9094", help="Kafka bootstrap servers")
    parser.add_argument("--group", default="qa-consumer-example", help="consumer group id")
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="QAScored JSON Schema")
    parser.add_argument(
        "--session-timeout-ms", type=int, default=10_000, help="consumer group session timeout (6000 on Tansu)"
    )
    parser.add_argument("--accepted-only", action="store_true", help="only pairs the judge accepted")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after N records (0: run forever)")
    return asyncio.run(consume(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
