"""JSON Schema for every wire record, for consumers in other languages."""
from __future__ import annotations

import json
from pathlib import Path

import msgspec

from .records import RECORD_TYPES
from .topics import TOPIC_RECORDS


def schema_for(name: str) -> dict:
    return msgspec.json.schema(RECORD_TYPES[name])


def write_json_schemas(out_dir: str | Path) -> list[Path]:
    """Write `<Record>.schema.json` for each record and an index of topic -> record."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in RECORD_TYPES:
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema_for(name), indent=2, sort_keys=True) + "\n")
        written.append(path)
    index = out / "topics.json"
    index.write_text(json.dumps(TOPIC_RECORDS, indent=2) + "\n")
    written.append(index)
    return written
