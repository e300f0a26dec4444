"""JSON Schema for every wire record, for consumers in other languages."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from .records import RECORD_TYPES
from .topics import TOPIC_RECORDS


def schema_for(name: str) -> dict:
    return _clean_descriptions(msgspec.json.schema(RECORD_TYPES[name]))


def _clean_descriptions(node: Any) -> Any:
    """Docstrings as descriptions, dedented: msgspec 0.23 dedents them itself, earlier releases did not, and the
    committed files must not depend on which one generated them."""
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _clean_descriptions(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(v) for v in node]
    return node


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
